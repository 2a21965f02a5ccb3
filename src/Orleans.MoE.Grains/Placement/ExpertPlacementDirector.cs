using System.Collections.Concurrent;
using System.Globalization;
using Orleans.MoE.Gpu.Experts;
using Orleans.MoE.Grains.Catalog;
using Orleans.MoE.Grains.Cluster;
using Orleans.MoE.Grains.Experts;
using Orleans.Runtime.Placement;

namespace Orleans.MoE.Grains.Placement;

/// <summary>
/// Places expert activations (<see cref="ExpertPlacementStrategy"/>): only on silos that serve the model (their
/// copy loaded and matches the mesh's) and whose published free expert budget holds the expert's
/// weights (as stored, or as a GPU silo holds them: f16 widened to f32); there, the migration's target when the balancer moves it (Orleans' placement hint), else
/// the plan's silo when it qualifies, else GPU silos first, then the silo with the fewest experts of the
/// same layer, then the most free memory. Placements made here are counted against a silo's budget
/// until that silo publishes a new figure (which includes them), or for a few seconds at most.
/// </summary>
public sealed class ExpertPlacementDirector(MeshSilos silos, MeshPlanView plans, MeshModels models, TimeProvider time) : IPlacementDirector
{
    private static readonly TimeSpan PendingFor = TimeSpan.FromSeconds(3);
    private readonly ConcurrentDictionary<string, (SiloAddress Silo, int Layer, long Bytes, string? SeenFree, DateTimeOffset Until)> _recent = new();

    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var compatible = context.GetCompatibleSilos(target);
        var grain = target.GrainIdentity.Key.ToString() ?? "";
        var key = ExpertKey.Parse(grain);
        var now = time.GetUtcNow();
        foreach (var stale in _recent.Where(r => r.Value.Until < now).Select(r => r.Key).ToList())
        {
            _recent.TryRemove(stale, out _);
        }

        var layout = models.Loaded.TryGetValue(key.Model, out var model) && key.Expert >= 0 && key.Expert < model.MoeBlock(key.Layer).ExpertCount
            ? model.MoeBlock(key.Layer).Experts[key.Expert]
            : null;
        var (hostBytes, deviceBytes) = layout is null ? (0L, 0L) : (layout.WeightBytes, DeviceExpert.BytesOf(layout));
        long Bytes(SiloInfo s) => IsGpu(s) ? deviceBytes : hostBytes; // f16 weights are widened to f32 on a device
        var serving = silos.Live.Where(s => compatible.Contains(s.Address) && s.Metadata.ContainsKey(SiloMetadataKeys.Model(key.Model))).ToList();
        if (serving.Count == 0)
        {
            throw new ModelUnavailableException($"no live silo serves model '{key.Model}' (expert {key})");
        }

        var pending = _recent.Values.ToList();
        static string? Published(SiloInfo s) => s.Metadata.GetValueOrDefault(SiloMetadataKeys.MemoryFree);
        long Free(SiloInfo s) =>
            (long.TryParse(Published(s), CultureInfo.InvariantCulture, out var value) ? value : long.MaxValue / 2)
            - pending.Where(p => p.Silo.Equals(s.Address) && p.SeenFree == Published(s)).Sum(p => p.Bytes);
        var fitting = serving.Where(s => Free(s) >= Bytes(s)).ToList();
        if (fitting.Count == 0)
        {
            throw new ExpertCapacityException(
                $"no silo has room for expert {key} ({hostBytes} bytes); free expert memory: {string.Join(", ", serving.Select(s => $"{s.Address}={Free(s)}"))}. Add silos or raise Mesh:ExpertMemoryBytes");
        }

        var plan = plans.Get(key.Model);
        var hint = IPlacementDirector.GetPlacementHint(target.RequestContextData, compatible);
        var planned = plan.TargetOf(key);
        var chosen = fitting.FirstOrDefault(s => s.Address.Equals(hint)) ?? fitting.FirstOrDefault(s => s.Address.Equals(planned)) ?? fitting
            .OrderBy(s => IsGpu(s) ? 0 : 1)
            .ThenBy(s => plan.CountOnSilo(s.Address, key.Layer) + pending.Count(p => p.Layer == key.Layer && p.Silo.Equals(s.Address)))
            .ThenByDescending(Free)
            .ThenBy(s => s.Address.GetConsistentHashCode())
            .First();
        _recent[grain] = (chosen.Address, key.Layer, Bytes(chosen), Published(chosen), now + PendingFor);
        return Task.FromResult(chosen.Address);
    }

    private static bool IsGpu(SiloInfo silo) => silo.Metadata.GetValueOrDefault(SiloMetadataKeys.Gpu) == "true";
}
