namespace Orleans.MoE.Grains.Placement;

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

    /// <summary>
    /// Load is balanced only when it is worth a move: while the mesh served fewer tokens than this over the
    /// window, experts are spread by count alone; above it, nothing moves while the busiest silo carries
    /// fewer than this many tokens above the mean.
    /// </summary>
    public long MinTokensToRebalance { get; set; } = 1024;

    /// <summary>An expert with this multiple of its layer's mean load gets replicas.</summary>
    public double HotExpertFactor { get; set; } = 2.0;

    public int MaxReplicas { get; set; } = 4;

    /// <summary>Expert activations a silo moves per round at most (the mesh settles over a few rounds instead of all at once).</summary>
    public int MaxMovesPerRound { get; set; } = 16;

    /// <summary>Experts with fewer tokens than this in the window are never replicated (too little traffic to judge).</summary>
    public long MinTokensToReplicate { get; set; } = 1024;
}
