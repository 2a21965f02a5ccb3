using Orleans.MoE.Grains.Catalog;
using Orleans.MoE.Grains.Placement;

namespace Orleans.MoE.Grains.Status;

/// <summary>
/// The mesh at one moment, as the status command and the dashboard show it: its live silos with their
/// figures, and per model its description and placement status (plan, where each expert runs, its load).
/// </summary>
public sealed record MeshSnapshot(
    IReadOnlyList<SiloSummary> Silos,
    IReadOnlyDictionary<string, SiloMeshMetrics> Metrics,
    IReadOnlyList<MeshStatus> Models,
    IReadOnlyDictionary<string, ModelInfo> ModelInfos)
{
    /// <summary>Gathers the snapshot through <paramref name="grains"/> (a client's or a silo's); <paramref name="model"/> limits it to one model.</summary>
    public static async Task<MeshSnapshot> ReadAsync(IGrainFactory grains, string? model = null)
    {
        ArgumentNullException.ThrowIfNull(grains);
        var info = grains.GetGrain<IMeshInfoGrain>("mesh");
        var silos = await info.GetSilosAsync().ConfigureAwait(false);
        var names = model is not null ? [model] : await info.GetModelsAsync().ConfigureAwait(false);
        var metrics = await Task.WhenAll(silos.Select(s => MetricsAsync(grains, s.Address))).ConfigureAwait(false);
        var statuses = await Task.WhenAll(names.Select(n => grains.GetGrain<IMeshPlanGrain>(n).GetStatusAsync())).ConfigureAwait(false);
        var infos = await Task.WhenAll(names.Select(n => grains.GetGrain<IModelGrain>(n).GetInfoAsync())).ConfigureAwait(false);
        return new MeshSnapshot(
            silos,
            metrics.OfType<SiloMeshMetrics>().ToDictionary(m => m.Silo),
            statuses,
            infos.ToDictionary(i => i.Name));
    }

    /// <summary>A silo's figures, or null when it left between the two questions (it is shown without them).</summary>
    private static async Task<SiloMeshMetrics?> MetricsAsync(IGrainFactory grains, SiloAddress silo)
    {
        try
        {
            return await grains.GetGrain<ISiloMetricsGrain>(silo.ToParsableString()).GetAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (MeshFaults.IsTransient(e))
        {
            return null;
        }
    }
}
