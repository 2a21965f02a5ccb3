using Orleans.MoE.Grains.Gates;
using Orleans.MoE.Grains.Generation;
using Orleans.MoE.Grains.Placement;
using Orleans.MoE.Grains.Transport;

namespace Orleans.MoE.Grains;

/// <summary>The MoE mesh on one silo: configuration section "Mesh".</summary>
public sealed class MeshOptions
{
    /// <summary>Model name → directory of its Hugging Face checkpoint (the same files on every silo).</summary>
    public Dictionary<string, string> Models { get; set; } = [];

    /// <summary>Bytes of expert weights this silo may host; 0: 80 % of the memory available to the process.</summary>
    public long ExpertMemoryBytes { get; set; }

    /// <summary>"cpu", or "cuda" for the GPU backend (the CPU serves when no GPU backend is available).</summary>
    public string Device { get; set; } = "cpu";

    /// <summary>How long a gate keeps retrying an expert call that failed (its silo died, it is moving) before the step fails.</summary>
    public TimeSpan ExpertRetryWindow { get; set; } = TimeSpan.FromSeconds(60);

    public DataChannelOptions DataChannel { get; set; } = new();

    public SchedulerOptions Scheduler { get; set; } = new();

    public BalancerOptions Balancer { get; set; } = new();

    public DegradedModeOptions Degraded { get; set; } = new();
}
