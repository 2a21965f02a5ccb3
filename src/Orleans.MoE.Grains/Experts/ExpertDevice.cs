using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Gpu.Experts;
using Orleans.MoE.Models.Layers;

namespace Orleans.MoE.Grains.Experts;

/// <summary>
/// The device this silo's experts run on ("Mesh:Device", with "Mesh:DevicePrecision"), chosen once when the silo starts and said in
/// one log line: a GPU (<c>cuda</c>; <c>ilgpu-cpu</c>, the same kernels on ILGPU's CPU accelerator, in
/// tests), or none: the CPU engine (<c>cpu</c>, the default; <c>cuda</c> or <c>auto</c> without a CUDA
/// driver or device, with the reason). Expert grains upload their weights through it on activation and
/// free them on deactivation; all of the silo's device work (uploads, expert batches, frees) runs one
/// call at a time, as the device's one stream and cuBLAS handle require, and the experts share one
/// scratch workspace (<see cref="ExpertScratch"/>). Disposed after the experts:
/// an expert freed after the device (the silo is stopping) has nothing left to free.
/// </summary>
public sealed partial class ExpertDevice : IDisposable
{
    private readonly DeviceChoice _choice;
    private readonly ExpertScratch? _scratch;
    private readonly Lock _lock = new();
    private bool _disposed;

    public ExpertDevice(IOptions<MeshOptions> options, ILogger<ExpertDevice> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        var kind = DeviceKinds.Parse(options.Value.Device);
        _choice = GpuDevice.Choose(kind, new GpuOptions { Precision = GpuPrecisions.Parse(options.Value.DevicePrecision) });
        _scratch = _choice.Device is { } device ? new ExpertScratch(device) : null;
        if (kind is DeviceKind.Cuda && !_choice.IsGpu)
        {
            LogFellBack(logger, _choice.Reason);
        }
        else
        {
            LogChosen(logger, _choice.Reason);
        }
    }

    /// <summary>The GPU the experts run on, or null: the CPU engine.</summary>
    public GpuDevice? Device => _choice.Device;

    /// <summary>One line: what runs the experts and, on a fallback, why.</summary>
    public string Reason => _choice.Reason;

    public bool IsGpu => _choice.IsGpu;

    /// <summary>
    /// The default expert budget on a GPU: <see cref="LocalExperts.DefaultBudgetFraction"/> of its memory (of the host's
    /// memory for ILGPU's CPU accelerator, whose "device" memory is the host's); null on the CPU engine.
    /// </summary>
    public long? DefaultBudget => Device is { } device
        ? (long)(LocalExperts.DefaultBudgetFraction * (device.Kind == DeviceKind.IlgpuCpu
            ? Math.Min(device.Memory.TotalBytes, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes)
            : device.Memory.TotalBytes))
        : null;

    /// <summary>Uploads an expert's weights to the device (the host copy may go afterwards).</summary>
    public DeviceExpert Upload(SwiGluMlp weights)
    {
        var device = Device ?? throw new InvalidOperationException($"this silo's experts run on the CPU engine ({Reason})");
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return DeviceExpert.Upload(device, weights);
        }
    }

    /// <summary>Each expert of the batch on its rows of input into output (the rows travel to the device and back once).</summary>
    public void Forward(IReadOnlyList<ExpertRowsOnDevice> batch, ReadOnlySpan<float> input, Span<float> output)
    {
        ArgumentNullException.ThrowIfNull(batch);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            DeviceExpert.Forward(batch, input, output, _scratch ?? throw new InvalidOperationException($"this silo's experts run on the CPU engine ({Reason})"));
        }
    }

    /// <summary>Frees an expert's device memory (nothing to do once the device itself is gone).</summary>
    public void Free(DeviceExpert expert)
    {
        ArgumentNullException.ThrowIfNull(expert);
        lock (_lock)
        {
            if (!_disposed)
            {
                expert.Dispose();
            }
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
            _scratch?.Dispose();
            _choice.Dispose();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Experts run on {Device}")]
    private static partial void LogChosen(ILogger logger, string device);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Mesh:Device is cuda but experts run on {Device}")]
    private static partial void LogFellBack(ILogger logger, string device);
}
