namespace Orleans.MoE.Gpu.Device;

/// <summary>
/// The outcome of choosing a device: a <see cref="GpuDevice"/> to run kernels on, or none (run the CPU
/// engine) with the one-line <see cref="Reason"/> why. Owns the device: dispose it when done.
/// </summary>
public sealed class DeviceChoice : IDisposable
{
    internal DeviceChoice(DeviceKind requested, GpuDevice? device, string reason)
    {
        Requested = requested;
        Device = device;
        Reason = reason;
    }

    public DeviceKind Requested { get; }

    /// <summary>The device, or null when the CPU engine runs the model.</summary>
    public GpuDevice? Device { get; }

    /// <summary>One line: what runs the model and, on a fallback, why.</summary>
    public string Reason { get; }

    public bool IsGpu => Device is not null;

    public void Dispose() => Device?.Dispose();
}
