using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Runtime;
using Orleans.MoE.Runtime.Placement;

namespace Orleans.MoE.Grains.Placement;

/// <summary>
/// For grains keyed "model" or "model/…" that need the model's non-expert weights (the plan, generation
/// sequences): the calling silo when it serves the model, else a random silo that does (else the calling silo).
/// </summary>
public sealed class ModelSiloPlacementDirector : IPlacementDirector
{
    public SiloAddress PickSilo(PlacementContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var key = context.Grain.Key;
        var model = key.Split('/', 2)[0];
        var serving = context.Silos.Where(s => s.Metadata.ContainsKey(MeshMetadataKeys.Model(model))).ToList();
        if (serving.Count == 0 || serving.Any(s => s.Address == context.CallingSilo))
        {
            return context.CallingSilo;
        }

        return serving[Random.Shared.Next(serving.Count)].Address;
    }
}
