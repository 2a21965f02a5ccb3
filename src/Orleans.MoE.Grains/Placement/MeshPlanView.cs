using System.Collections.Concurrent;

namespace Orleans.MoE.Grains.Placement;

/// <summary>This silo's latest copy of each model's plan (refreshed every balancing round), read by gates and placement.</summary>
public sealed class MeshPlanView
{
    private readonly ConcurrentDictionary<string, MeshPlan> _plans = new(StringComparer.Ordinal);

    public MeshPlan Get(string model) => _plans.GetValueOrDefault(model) ?? MeshPlan.Empty;

    /// <summary>Keeps the newer of the plan held and <paramref name="plan"/>.</summary>
    public void Update(string model, MeshPlan plan) =>
        _plans.AddOrUpdate(model, plan, (_, held) => plan.Version >= held.Version ? plan : held);
}
