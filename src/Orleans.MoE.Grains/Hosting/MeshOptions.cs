namespace Orleans.MoE.Grains.Hosting;

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

    public SchedulerOptions Scheduler { get; set; } = new();

    public BalancerOptions Balancer { get; set; } = new();

    public DegradedModeOptions Degraded { get; set; } = new();
}

/// <summary>Continuous batching on each silo.</summary>
public sealed class SchedulerOptions
{
    /// <summary>Sequences that advance together in one step.</summary>
    public int MaxBatchSequences { get; set; } = 32;

    /// <summary>
    /// Tokens one step runs at most (every running sequence's next token, then prompt chunks): a long
    /// prompt is prefilled over several steps, so it neither stalls the others nor makes oversized messages.
    /// At least <see cref="MaxBatchSequences"/>.
    /// </summary>
    public int MaxStepTokens { get; set; } = 512;

    /// <summary>Sequences running or waiting on this silo; more are refused as busy.</summary>
    public int MaxQueuedSequences { get; set; } = 256;

    /// <summary>A sequence whose caller has not read its tokens for this long is cancelled (the caller went away).</summary>
    public TimeSpan ReaderLease { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>The balancer that replicates hot experts and evens load over silos.</summary>
public sealed class BalancerOptions
{
    public bool Enabled { get; set; } = true;

    /// <summary>Mean time between a silo's balancing rounds; each round waits a random 50 % to 150 % of it.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Load is measured over this moving window.</summary>
    public TimeSpan LoadWindow { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Nothing moves while the busiest silo carries less than this multiple of the mean load.</summary>
    public double ImbalanceThreshold { get; set; } = 1.25;

    /// <summary>An expert with this multiple of its layer's mean load gets replicas.</summary>
    public double HotExpertFactor { get; set; } = 2.0;

    public int MaxReplicas { get; set; } = 4;

    /// <summary>Expert activations a silo moves per round at most (the mesh settles over a few rounds instead of all at once).</summary>
    public int MaxMovesPerRound { get; set; } = 16;

    /// <summary>Experts with fewer tokens than this in the window are never replicated (too little traffic to judge).</summary>
    public long MinTokensToReplicate { get; set; } = 1024;
}

/// <summary>
/// Opt-in: prefer latency to exactness. Experts that have not answered within the deadline are skipped
/// and each token's routing weights renormalised over the experts that answered, as long as at least
/// <see cref="MinExperts"/> of its experts did. Off by default (then a step waits for every expert).
/// </summary>
public sealed class DegradedModeOptions
{
    public bool Enabled { get; set; }

    public TimeSpan Deadline { get; set; } = TimeSpan.FromMilliseconds(250);

    public int MinExperts { get; set; } = 1;
}
