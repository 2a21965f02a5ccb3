using Orleans.MoE.Gpu.Device;

namespace Orleans.MoE.Gpu.Experts;

/// <summary>
/// Device scratch for expert computations, shared by every <see cref="DeviceExpert"/> a caller runs one at a
/// time (a silo's experts): one workspace that grows to the largest batch, instead of one per expert. Not
/// thread-safe: the caller serialises its use. Dispose before the device.
/// </summary>
public sealed class ExpertScratch(GpuDevice device) : IDisposable
{
    internal Workspace Workspace { get; } = new(device ?? throw new ArgumentNullException(nameof(device)));

    internal GpuDevice Device { get; } = device;

    public void Dispose() => Workspace.Dispose();
}
