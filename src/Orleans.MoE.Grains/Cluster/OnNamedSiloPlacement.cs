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

/// <summary>
/// Places a grain keyed by a silo address on that silo, which must be live: a compatible silo, or one that
/// membership has just made active and whose grain types this silo has not heard of yet (silos run the same
/// mesh, so it hosts the grain; refusing it would only make Orleans retry, logging a warning and a stack trace).
/// </summary>
internal sealed class OnNamedSiloPlacementDirector(IClusterMembershipService membership) : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var key = target.GrainIdentity.Key.ToString() ?? "";
        var silo = SiloAddress.FromParsableString(key);
        return context.GetCompatibleSilos(target).Contains(silo) || membership.CurrentSnapshot.GetSiloStatus(silo) == SiloStatus.Active
            ? Task.FromResult(silo)
            : throw new SiloUnavailableException($"silo {silo} is not an active silo of the cluster");
    }
}
