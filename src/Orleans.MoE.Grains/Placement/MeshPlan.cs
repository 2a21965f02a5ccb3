using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Runtime;
using Orleans.MoE.Runtime.Serialization;

namespace Orleans.MoE.Grains.Placement;

/// <summary>Where one expert replica should live.</summary>
[GenerateSerializer]
public sealed record PlannedExpert(int Layer, int Expert, int Replica, SiloAddress Silo);

/// <summary>The balancer's plan for one model: every expert replica and its silo. Version 0: no plan yet.</summary>
[GenerateSerializer]
public sealed record MeshPlan(int Version, PlannedExpert[] Experts)
{
    public static MeshPlan Empty { get; } = new(0, []);

    /// <summary>Replicas of an expert (at least 1).</summary>
    public int Replicas(int layer, int expert) => Math.Max(1, Experts.Count(p => p.Layer == layer && p.Expert == expert));

    public SiloAddress? TargetOf(ExpertKey key) =>
        Experts.FirstOrDefault(p => p.Layer == key.Layer && p.Expert == key.Expert && p.Replica == key.Replica)?.Silo;
}

/// <summary>Tokens one expert activation computed within the load window.</summary>
[GenerateSerializer]
public readonly record struct ExpertLoad(string Key, long Tokens);

/// <summary>What a silo tells the plan each balancing round: its expert activations, their load, its budget.</summary>
[GenerateSerializer]
public sealed record SiloReport(SiloAddress Silo, ExpertLoad[] Experts, long Budget, long Free);

/// <summary>The mesh as the plan grain sees it, for <c>moe cluster status</c> and the dashboard.</summary>
[GenerateSerializer]
public sealed record MeshStatus(string Model, string? Fingerprint, MeshPlan Plan, SiloReport[] Silos, Dictionary<string, string> RejectedSilos, int HistoryRounds);
