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
        if (x.Length < (long)tokens * HiddenSize || output.Length < (long)tokens * HiddenSize)
        {
            throw new ArgumentException($"{tokens} rows of {HiddenSize} need {tokens * HiddenSize} values in and out");
        }

        if (scratch is not null)
        {
            Forward([new ExpertRowsOnDevice(this, 0, tokens)], x, output, scratch);
            return;
        }

        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            Run([new ExpertRowsOnDevice(this, 0, tokens)], x, output, _device, _workspace ??= new Workspace(_device));
        }
    }

    /// <summary>
    /// A batch of experts of one device over rows of one input: output rows [Offset, Offset + Count) =
    /// Expert(input rows [Offset, Offset + Count)) for each. The rows they cover travel to the device once
    /// and back once (one wait for the device), not once per expert; other rows of output are left as they are.
    /// </summary>
    public static void Forward(IReadOnlyList<ExpertRowsOnDevice> batch, ReadOnlySpan<float> input, Span<float> output, ExpertScratch scratch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(scratch);
        if (batch.Any(b => b.Expert._device != scratch.Device))
        {
            throw new ArgumentException("the scratch belongs to another device", nameof(scratch));
        }

        Run(batch, input, output, scratch.Device, scratch.Workspace);
    }

    private static void Run(IReadOnlyList<ExpertRowsOnDevice> batch, ReadOnlySpan<float> input, Span<float> output, GpuDevice device, Workspace workspace)
    {
        var live = batch.Where(b => b.Count > 0).ToList();
        if (live.Count == 0)
        {
            return;
        }

        var width = live[0].Expert.HiddenSize;
        var first = live.Min(b => b.Offset);
        var end = live.Max(b => b.Offset + b.Count);
        foreach (var (expert, offset, count) in live)
        {
            if (expert.HiddenSize != width || offset < 0 || count < 0)
            {
                throw new ArgumentException($"experts of one batch share their width ({width}) and run rows at offsets ≥ 0");
            }
        }

        if (input.Length < (long)end * width || output.Length < (long)end * width)
        {
            throw new ArgumentException($"rows up to {end} of {width} need {end * width} values in and out");
        }

        device.Bind();
        workspace.Reset();
        var rows = end - first;
        var x = workspace.Floats((long)rows * width);
        ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(x, device.Accelerator.DefaultStream, input[(first * width)..(end * width)]);
        var y = workspace.Floats((long)rows * width);
        foreach (var (expert, offset, count) in live)
        {
            lock (expert._lock)
            {
                ObjectDisposedException.ThrowIf(expert._disposed, expert);
                var at = (long)(offset - first) * width;
                var mark = workspace.Mark();
                expert._mlp.Forward(device.Ops, x.SubView(at, (long)count * width), count, y.SubView(at, (long)count * width), workspace, accumulate: false);
                workspace.Release(mark);
            }
        }

        var result = y.ToHost();
        foreach (var (_, offset, count) in live)
        {
            result.AsSpan((offset - first) * width, count * width).CopyTo(output.Slice(offset * width, count * width));
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

/// <summary>Rows [Offset, Offset + Count) of a batch that <see cref="Expert"/> runs.</summary>
public readonly record struct ExpertRowsOnDevice(DeviceExpert Expert, int Offset, int Count);
