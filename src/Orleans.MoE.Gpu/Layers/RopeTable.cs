using ILGPU;
using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Gpu.Layers;

/// <summary>
/// A rotary embedding's cos/sin table [positions, dim / 2] on the device, the values the CPU engine
/// rotates by (including YaRN's frequencies and attention factor), grown by doubling as positions pass its end.
/// </summary>
internal sealed class RopeTable(GpuDevice device, RotaryEmbedding rope) : IDisposable
{
    private DeviceBuffer<float>? _cos;
    private DeviceBuffer<float>? _sin;
    private int _positions;

    public int Half => rope.Dimension / 2;

    public bool Interleaved => rope.Layout == RopeLayout.Interleaved;

    public ArrayView<float> Cos => _cos!.View;

    public ArrayView<float> Sin => _sin!.View;

    public void EnsurePositions(int positions)
    {
        if (positions <= _positions)
        {
            return;
        }

        var capacity = Math.Max(positions, Math.Max(256, _positions * 2));
        var (cos, sin) = rope.CosSinTable(capacity);
        Dispose();
        _cos = device.Allocate<float>(cos.Length, isWeights: true);
        _sin = device.Allocate<float>(sin.Length, isWeights: true);
        ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(_cos.View, cos);
        ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(_sin.View, sin);
        _positions = capacity;
    }

    public void Dispose()
    {
        _cos?.Dispose();
        _sin?.Dispose();
        _cos = _sin = null;
        _positions = 0;
    }
}
