using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Gpu.Layers;
using Orleans.MoE.Models.Layers;
using Orleans.MoE.Tensors;

namespace Orleans.MoE.Gpu.Experts;

/// <summary>
/// One expert's weights on a device, as an expert grain owns them: uploaded when the grain activates
/// (<see cref="Upload"/>), run on the rows routed to it (<see cref="Forward(ReadOnlySpan{float}, int, Span{float}, ExpertScratch)"/>: GEMV for few rows, a GEMM,
/// cuBLAS on CUDA, for many), its device memory reported (<see cref="DeviceBytes"/>) for placement, and
/// freed when the grain deactivates (<see cref="Dispose"/>). Thread-safe; calls are serialised.
/// </summary>
public sealed class DeviceExpert : IDisposable
{
    private readonly GpuDevice _device;
    private readonly DeviceMlp _mlp;
    private Workspace? _workspace; // its own scratch, made when first run without a shared one
    private readonly Lock _lock = new();
    private bool _disposed;

    private DeviceExpert(GpuDevice device, DeviceMlp mlp)
    {
        _device = device;
        _mlp = mlp;
    }

    public int HiddenSize => _mlp.Hidden;

    public int IntermediateSize => _mlp.Intermediate;

    /// <summary>Bytes of this expert's weights on the device (gate, up and down projections as stored).</summary>
    public long DeviceBytes => _mlp.Bytes;

    /// <summary>
    /// Bytes <paramref name="expert"/>'s weights take on a device, known before uploading them: bf16 stays
    /// bf16, f32 stays f32, f16 is widened to f32.
    /// </summary>
    public static long BytesOf(SwiGluMlp expert)
    {
        ArgumentNullException.ThrowIfNull(expert);
        static long Bytes(WeightMatrix w) => (long)w.Rows * w.Cols * (w.DType == DType.BF16 ? 2 : 4);
        return Bytes(expert.Gate.Weight) + Bytes(expert.Up.Weight) + Bytes(expert.Down.Weight);
    }

    /// <summary>Uploads <paramref name="expert"/>'s three projections (the host copy may go away afterwards).</summary>
    public static DeviceExpert Upload(GpuDevice device, SwiGluMlp expert)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(expert);
        device.Bind();
        var mlp = new DeviceMlp(device, expert);
        device.Synchronize();
        return new DeviceExpert(device, mlp);
    }

    /// <summary>output[T, H] = down(silu(gate x) · up x) for <paramref name="tokens"/> rows of x[T, H].</summary>
    public void Forward(ReadOnlySpan<float> x, int tokens, Span<float> output) => Forward(x, tokens, output, null);

    /// <summary>The same with a <paramref name="scratch"/> shared with other experts of the device (used by one call at a time).</summary>
    public void Forward(ReadOnlySpan<float> x, int tokens, Span<float> output, ExpertScratch? scratch)
    {
        var width = HiddenSize;
        if (x.Length < (long)tokens * width || output.Length < (long)tokens * width)
        {
            throw new ArgumentException($"{tokens} rows of {width} need {tokens * width} values in and out");
        }

        if (scratch is not null && scratch.Device != _device)
        {
            throw new ArgumentException("the scratch belongs to another device", nameof(scratch));
        }

        if (tokens == 0)
        {
            return;
        }

        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _device.Bind();
            var workspace = scratch?.Workspace ?? (_workspace ??= new Workspace(_device));
            workspace.Reset();
            var input = workspace.Floats((long)tokens * width);
            ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(input, _device.Accelerator.DefaultStream, x[..(tokens * width)]);
            var result = workspace.Floats((long)tokens * width);
            _mlp.Forward(_device.Ops, input, tokens, result, workspace, accumulate: false);
            result.ToHost().AsSpan().CopyTo(output);
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _device.Bind();
            _device.Synchronize();
            _mlp.Dispose();
            _workspace?.Dispose();
        }
    }
}
