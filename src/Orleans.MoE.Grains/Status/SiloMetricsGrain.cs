using Orleans.MoE.Grains.Cluster;
using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Diagnostics;
using Orleans.MoE.Grains.Generation;

namespace Orleans.MoE.Grains.Status;

/// <summary>One silo's mesh figures: what it hosts (each expert activation with its load over the window) and queues, what its gates measured, the failures it absorbed.</summary>
[GenerateSerializer]
[Alias("moe.SiloMeshMetrics")]
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
    ExpertLoad[] HostedExperts);

/// <summary>The mesh figures of the silo named by the key (its address, <see cref="SiloAddress.ToParsableString"/>): a grain that always lives on that silo.</summary>
[Alias("moe.ISiloMetricsGrain")]
public interface ISiloMetricsGrain : IGrainWithStringKey
{
    [Alias("Get")]
    Task<SiloMeshMetrics> GetAsync();
}

[OnNamedSiloPlacement]
public sealed class SiloMetricsGrain(LocalExperts local, GenerationScheduler scheduler, MeshMetrics metrics) : Grain, ISiloMetricsGrain
{
    public Task<SiloMeshMetrics> GetAsync() => Task.FromResult(new SiloMeshMetrics(
        local.Silo.ToString(),
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
