using ILGPU;
using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Models;

namespace Orleans.MoE.Gpu.Layers;

/// <summary>What a layer's forward on the device works with: the device's launches, scratch memory, and the rope tables.</summary>
internal readonly record struct DeviceStep(DeviceOps Ops, Workspace Workspace, int Tokens, int Start);

/// <summary>The attention half of a decoder layer on the device.</summary>
internal interface IDeviceAttention : IDisposable
{
    (int KeyWidth, int ValueWidth) CacheShape { get; }

    RopeTable Rope { get; }

    /// <summary>hidden[T, H] += attention(x[T, H]) at positions Start.., writing this layer's cache rows.</summary>
    void Forward(in DeviceStep step, ArrayView<float> x, ArrayView<float> keys, ArrayView<float> values, ArrayView<float> hidden);
}

/// <summary>The feed-forward half of a decoder layer on the device.</summary>
internal interface IDeviceFeedForward : IDisposable
{
    /// <summary>hidden[T, H] += FFN(x[T, H]); router logits into the trace when given.</summary>
    void Forward(in DeviceStep step, ArrayView<float> x, ArrayView<float> hidden, ForwardTrace? trace);
}
