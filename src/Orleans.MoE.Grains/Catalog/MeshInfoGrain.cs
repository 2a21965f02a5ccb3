using Orleans.MoE.Grains.Cluster;

namespace Orleans.MoE.Grains.Catalog;

/// <summary>The mesh's silos as this silo knows them (<see cref="MeshSilos"/>), with Orleans' activation counts.</summary>
[StatelessWorker(1)]
public sealed class MeshInfoGrain(MeshSilos silos) : Grain, IMeshInfoGrain
{
    public async Task<SiloSummary[]> GetSilosAsync()
    {
        var live = silos.Live;
        var statistics = await GrainFactory.GetGrain<IManagementGrain>(0).GetRuntimeStatistics(live.Select(s => s.Address).ToArray()).ConfigureAwait(true);
        return live.Select((s, i) => new SiloSummary(s.Address, new Dictionary<string, string>(s.Metadata), i < statistics.Length ? statistics[i].ActivationCount : 0)).ToArray();
    }

    public Task<string[]> GetModelsAsync() =>
        Task.FromResult(silos.Live.SelectMany(s => SiloMetadataKeys.Models(s.Metadata)).Distinct().Order(StringComparer.Ordinal).ToArray());
}
