using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Generation;
using Orleans.MoE.Runtime;
using Orleans.MoE.Runtime.Placement;
using Orleans.MoE.Runtime.Serialization;

namespace Orleans.MoE.Grains.Diagnostics;

/// <summary>One silo's mesh figures: what it hosts (each expert activation with its load over the window) and queues, what its gates measured, the failures it absorbed.</summary>
[GenerateSerializer]
public sealed record SiloMeshMetrics(
    string Silo,
    int Experts,
    long ExpertBytes,
    long ExpertBudget,
    int QueuedSequences,
    long TokensGenerated,
    double DispatchOverheadUsP50,
    double DispatchOverheadUsP99,
    double TimeToFirstTokenMsP50,
    double InterTokenMsP50,
    long ExpertCallFailures,
    long SkippedExperts,
    string[] RecentEvents,
    Placement.ExpertLoad[] HostedExperts);

/// <summary>The mesh figures of the silo named by the key (its address): a grain that always lives on that silo.</summary>
public interface ISiloMetricsGrain : IGrainWithStringKey
{
    Task<SiloMeshMetrics> GetAsync();
}

[CustomPlacement(typeof(OnNamedSiloPlacementDirector))]
public sealed class SiloMetricsGrain(LocalExperts local, GenerationScheduler scheduler, MeshMetrics metrics) : Grain, ISiloMetricsGrain
{
    public Task<SiloMeshMetrics> GetAsync() => Task.FromResult(new SiloMeshMetrics(
        Silo.ToString(),
        local.Hosted.Count,
        local.Reserved,
        local.Budget,
        scheduler.Queued,
        metrics.TokensGenerated,
        metrics.DispatchOverhead.Percentile(50),
        metrics.DispatchOverhead.Percentile(99),
        metrics.TimeToFirstToken.Percentile(50) / 1000,
        metrics.InterTokenLatency.Percentile(50) / 1000,
        metrics.ExpertCallFailures,
        metrics.SkippedExperts,
        metrics.RecentEvents.Select(e => $"{e.Time:O} {e.Description}").ToArray(),
        local.HostedLoad()));
}

/// <summary>Places a grain keyed by a silo address on that silo (which must be alive).</summary>
public sealed class OnNamedSiloPlacementDirector : IPlacementDirector
{
    public SiloAddress PickSilo(PlacementContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var target = SiloAddress.Parse(context.Grain.Key);
        return context.Silos.Any(s => s.Address == target)
            ? target
            : throw new SiloUnavailableException(target, "it is not an active silo of the cluster");
    }
}
