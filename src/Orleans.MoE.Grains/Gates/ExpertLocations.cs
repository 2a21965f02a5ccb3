using System.Collections.Concurrent;
using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Placement;

namespace Orleans.MoE.Grains.Gates;

/// <summary>
/// Where this silo's gates believe each expert activation lives, to group a layer's experts into one
/// request per destination silo: this silo for experts hosted here, else what the last answer from the
/// expert said, else the plan's silo for it (placement follows the plan). A belief is only an address
/// for grouping: the request itself goes to an expert grain, which Orleans delivers wherever it
/// really lives, and experts a destination does not host come back as missing and are forgotten here
/// (then sent alone, and their answer says where they are).
/// </summary>
public sealed class ExpertLocations(LocalExperts local, MeshPlanView plans)
{
    private readonly ConcurrentDictionary<ExpertKey, SiloAddress?> _known = new();

    /// <summary>The silo <paramref name="key"/> is believed to live on, or null when unknown.</summary>
    public SiloAddress? Get(ExpertKey key)
    {
        if (local.IsHosted(key))
        {
            return local.Silo;
        }

        return _known.TryGetValue(key, out var known) ? known : plans.Get(key.Model).TargetOf(key);
    }

    /// <summary>The expert answered from <paramref name="silo"/>.</summary>
    public void Learn(ExpertKey key, SiloAddress silo) => _known[key] = silo;

    /// <summary>The expert is not where it was believed to be (or its silo failed): unknown until it answers again.</summary>
    public void Forget(ExpertKey key) => _known[key] = null;
}
