using Orleans.MoE.Grains.Experts;

namespace Orleans.MoE.Grains.Placement;

/// <summary>Where one expert replica should live.</summary>
[GenerateSerializer]
[Alias("moe.PlannedExpert")]
[Immutable]
public sealed record PlannedExpert(int Layer, int Expert, int Replica, SiloAddress Silo);

/// <summary>
/// The balancer's plan for one model: every expert replica and its silo. Version 0: no plan yet.
/// Lookups go through an index built on first use (gates ask for every routed expert of every step).
/// </summary>
[GenerateSerializer]
[Alias("moe.MeshPlan")]
[Immutable]
public sealed record MeshPlan(int Version, PlannedExpert[] Experts)
{
    [NonSerialized]
    private Index? _index;

    public static MeshPlan Empty { get; } = new(0, []);

    /// <summary>Replicas of an expert (at least 1).</summary>
    public int Replicas(int layer, int expert) => Math.Max(1, Indexed.Replicas.GetValueOrDefault((layer, expert)));

    public SiloAddress? TargetOf(ExpertKey key) => Indexed.Targets.GetValueOrDefault((key.Layer, key.Expert, key.Replica));

    /// <summary>Experts of <paramref name="layer"/> the plan puts on <paramref name="silo"/>.</summary>
    public int CountOnSilo(SiloAddress silo, int layer) => Indexed.PerSiloLayer.GetValueOrDefault((silo, layer));

    private Index Indexed => LazyInitializer.EnsureInitialized(ref _index, () => new Index(Experts));

    private sealed class Index
    {
        public Index(PlannedExpert[] experts)
        {
            foreach (var p in experts)
            {
                Targets[(p.Layer, p.Expert, p.Replica)] = p.Silo;
                Replicas[(p.Layer, p.Expert)] = Replicas.GetValueOrDefault((p.Layer, p.Expert)) + 1;
                PerSiloLayer[(p.Silo, p.Layer)] = PerSiloLayer.GetValueOrDefault((p.Silo, p.Layer)) + 1;
            }
        }

        public Dictionary<(int Layer, int Expert, int Replica), SiloAddress> Targets { get; } = [];

        public Dictionary<(int Layer, int Expert), int> Replicas { get; } = [];

        public Dictionary<(SiloAddress Silo, int Layer), int> PerSiloLayer { get; } = [];
    }
}

/// <summary>What a silo tells the plan each balancing round: its expert activations, their load, its budget.</summary>
[GenerateSerializer]
[Alias("moe.SiloReport")]
public sealed record SiloReport(SiloAddress Silo, ExpertLoad[] Experts, long Budget, long Free);

/// <summary>The mesh as the plan grain sees it, for <c>moe cluster status</c> and the dashboard.</summary>
[GenerateSerializer]
[Alias("moe.MeshStatus")]
public sealed record MeshStatus(string Model, string? Fingerprint, MeshPlan Plan, SiloReport[] Silos, Dictionary<string, string> RejectedSilos, int HistoryRounds);
