using Orleans.Runtime.Placement;

namespace Orleans.MoE.Grains.Cluster;

/// <summary>
/// For grains keyed "model" or "model/…" that need the model's non-expert weights (the plan, generation
/// sequences): the calling silo when it serves the model, else a random silo that does (else the calling silo).
/// </summary>
[GenerateSerializer]
[Immutable]
[Alias("moe.ModelSiloPlacementStrategy")]
public sealed class ModelSiloPlacementStrategy : PlacementStrategy
{
    public static ModelSiloPlacementStrategy Instance { get; } = new();
}

/// <summary>The grain is placed on a silo that serves the model its key starts with.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class ModelSiloPlacementAttribute() : PlacementAttribute(ModelSiloPlacementStrategy.Instance);

/// <summary>Places by <see cref="ModelSiloPlacementStrategy"/>, from what silos publish in <see cref="MeshSilos"/>.</summary>
internal sealed class ModelSiloPlacementDirector(MeshSilos silos) : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var compatible = context.GetCompatibleSilos(target);
        if (IPlacementDirector.GetPlacementHint(target.RequestContextData, compatible) is { } hint)
        {
            return Task.FromResult(hint);
        }

        var model = (target.GrainIdentity.Key.ToString() ?? "").Split('/', 2)[0];
        var serving = compatible.Where(s => silos.Metadata(s).ContainsKey(SiloMetadataKeys.Model(model))).ToList();
        if (serving.Count == 0)
        {
            return Task.FromResult(compatible.Contains(context.LocalSilo) ? context.LocalSilo : compatible[Random.Shared.Next(compatible.Length)]);
        }

        return Task.FromResult(serving.Contains(context.LocalSilo) ? context.LocalSilo : serving[Random.Shared.Next(serving.Count)]);
    }
}
