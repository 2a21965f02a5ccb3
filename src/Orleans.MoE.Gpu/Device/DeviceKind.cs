namespace Orleans.MoE.Gpu.Device;

/// <summary>Where a model runs: <c>cuda</c>, <c>ilgpu-cpu</c> (the GPU kernels on ILGPU's CPU accelerator, for tests), <c>cpu</c> (the CPU engine) or <c>auto</c>.</summary>
public enum DeviceKind
{
    /// <summary>CUDA when a driver and a device are present, else the CPU engine.</summary>
    Auto,

    Cuda,

    /// <summary>The same kernels on ILGPU's CPU accelerator, which simulates every thread: for tests, not for speed.</summary>
    IlgpuCpu,

    /// <summary>The existing CPU engine (no ILGPU).</summary>
    Cpu,
}

public static class DeviceKinds
{
    /// <summary>The spellings on the command line and in configuration.</summary>
    public static IReadOnlyList<string> Names { get; } = ["auto", "cuda", "ilgpu-cpu", "cpu"];

    public static DeviceKind Parse(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => DeviceKind.Auto,
        "cuda" or "gpu" => DeviceKind.Cuda,
        "ilgpu-cpu" => DeviceKind.IlgpuCpu,
        "cpu" => DeviceKind.Cpu,
        _ => throw new FormatException($"unknown device '{text}': use one of {string.Join(", ", Names)}"),
    };

    public static string Name(this DeviceKind kind) => kind switch
    {
        DeviceKind.Auto => "auto",
        DeviceKind.Cuda => "cuda",
        DeviceKind.IlgpuCpu => "ilgpu-cpu",
        DeviceKind.Cpu => "cpu",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };
}
