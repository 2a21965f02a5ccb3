using Orleans.Runtime.Placement;

namespace Orleans.MoE.Grains.Cluster;

/// <summary>Places a grain keyed by a silo address (<see cref="SiloAddress.ToParsableString"/>) on that silo.</summary>
[GenerateSerializer]
[Immutable]
[Alias("moe.OnNamedSiloPlacementStrategy")]
public sealed class OnNamedSiloPlacementStrategy : PlacementStrategy
{
    public static OnNamedSiloPlacementStrategy Instance { get; } = new();
}

/// <summary>The grain lives on the silo its key names.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class OnNamedSiloPlacementAttribute() : PlacementAttribute(OnNamedSiloPlacementStrategy.Instance);

/// <summary>Places a grain keyed by a silo address on that silo, which must be a compatible live silo.</summary>
internal sealed class OnNamedSiloPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var key = target.GrainIdentity.Key.ToString() ?? "";
        var silo = SiloAddress.FromParsableString(key);
        return context.GetCompatibleSilos(target).Contains(silo)
            ? Task.FromResult(silo)
            : throw new SiloUnavailableException($"silo {silo} is not an active silo of the cluster");
    }
}
