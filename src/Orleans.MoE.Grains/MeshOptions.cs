using Orleans.MoE.Grains.Gates;
using Orleans.MoE.Grains.Generation;
using Orleans.MoE.Grains.Placement;
using Orleans.MoE.Grains.Transport;

namespace Orleans.MoE.Grains;

/// <summary>The MoE mesh on one silo: configuration section "Mesh".</summary>
public sealed class MeshOptions
{
    public const string DefaultDevice = "cpu";

    /// <summary>Model name → directory of its Hugging Face checkpoint (the same files on every silo).</summary>
    public Dictionary<string, string> Models { get; set; } = [];

    /// <summary>Bytes of expert weights this silo may host; 0: 80 % of the memory available to the process.</summary>
    public long ExpertMemoryBytes { get; set; }

    /// <summary>
    /// What runs this silo's experts: "cpu" (the CPU engine, the default), "cuda" (the GPU backend: expert
    /// weights on the GPU, the expert budget from its memory), "auto" (CUDA when present), or "ilgpu-cpu"
    /// (the GPU kernels on ILGPU's CPU accelerator, for tests). Without a CUDA driver or device, "cuda" and
    /// "auto" log one line saying why and run on the CPU engine.
    /// </summary>
    public string Device { get; set; } = DefaultDevice;

    /// <summary>
    /// On a GPU: "exact" (the default; f32-level results, the CPU engine's tolerance) or "bf16-activations"
    /// (the experts' GEMMs round their activations to bf16: half the tensor-core work, 2e-2 relative
    /// tolerance; GEMVs stay exact). See docs/GPU-BACKEND.md.
    /// </summary>
    public string DevicePrecision { get; set; } = "exact";


    /// <summary>How long a gate keeps retrying an expert call that failed (its silo died, it is moving) before the step fails.</summary>
    public TimeSpan ExpertRetryWindow { get; set; } = TimeSpan.FromSeconds(60);

    public DataChannelOptions DataChannel { get; set; } = new();

    public SchedulerOptions Scheduler { get; set; } = new();

    public BalancerOptions Balancer { get; set; } = new();

    public DegradedModeOptions Degraded { get; set; } = new();
}
