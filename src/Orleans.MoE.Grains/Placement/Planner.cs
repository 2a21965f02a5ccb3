using Orleans.MoE.Grains.Experts;

namespace Orleans.MoE.Grains.Placement;

/// <summary>A silo as the planner sees it: its expert budget and whether it has a GPU.</summary>
public sealed record PlannerSilo(SiloAddress Address, long Budget, bool Gpu);

/// <summary>An expert to place: its layer, index and weight bytes as stored, and on a GPU silo (f16 is widened to f32 there; default: as stored).</summary>
public readonly record struct PlannerExpert(int Layer, int Expert, long Bytes, long? DeviceBytes = null)
{
    /// <summary>The bytes the expert takes of <paramref name="silo"/>'s budget.</summary>
    public long BytesOn(PlannerSilo silo) => silo is { Gpu: true } ? DeviceBytes ?? Bytes : Bytes;
}

/// <summary>
/// Computes expert plans: how many replicas each expert gets (hot experts, with a multiple of their
/// layer's mean load, get more) and which silo each replica lives on, so silos carry equal load, a
/// layer's experts are spread over silos, GPU silos are preferred and no silo gets more weights than its
/// budget. Hysteresis: the current plan stays while it is valid, every silo holds its share of the
/// experts, and no silo carries more than <see cref="BalancerOptions.ImbalanceThreshold"/> times the
/// mean load or the excess is under <see cref="BalancerOptions.MinTokensToRebalance"/> tokens (a move
/// must pay for itself); a mesh that served fewer tokens than that is spread by expert count alone. A
/// replica stays where it is while its silo is under the bound and holds no more than its share of the
/// layer; so small or noisy imbalances move nothing.
/// </summary>
public static class Planner
{
    public static MeshPlan Compute(MeshPlan current, IReadOnlyList<PlannerExpert> experts, IReadOnlyDictionary<(int Layer, int Expert), long> load,
        IReadOnlyList<PlannerSilo> silos, BalancerOptions options)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(experts);
        ArgumentNullException.ThrowIfNull(load);
        ArgumentNullException.ThrowIfNull(silos);
        ArgumentNullException.ThrowIfNull(options);
        if (silos.Count == 0 || experts.Count == 0)
        {
            return current;
        }

        if (load.Values.Sum() < options.MinTokensToRebalance)
        {
            load = new Dictionary<(int, int), long>(); // Too little traffic to judge: spread by count.
        }

        var replicas = Replicas(experts, load, silos.Count, options);
        var weight = new Dictionary<(int, int), double>();
        foreach (var e in experts)
        {
            // Unloaded experts weigh 1 so an idle mesh still spreads them evenly.
            weight[(e.Layer, e.Expert)] = Math.Max(1, load.GetValueOrDefault((e.Layer, e.Expert))) / (double)replicas[(e.Layer, e.Expert)];
        }

        // Only load could move a valid plan, and only by a margin: the busiest silo above the threshold
        // × the mean and (with load worth judging) at least MinTokensToRebalance tokens above it.
        var significant = load.Count > 0;
        var valid = IsValid(current, experts, replicas, silos, options.ImbalanceThreshold);
        var busiest = valid ? SiloLoads(current, weight, silos).Values.Max() : 0;
        if (valid)
        {
            var mean = SiloLoads(current, weight, silos).Values.Average();
            if (busiest <= options.ImbalanceThreshold * mean || (significant && busiest - mean < options.MinTokensToRebalance))
            {
                return current;
            }
        }

        var total = experts.Sum(e => weight[(e.Layer, e.Expert)] * replicas[(e.Layer, e.Expert)]);
        var stayBound = total / silos.Count * options.ImbalanceThreshold;
        var assigned = silos.ToDictionary(s => s.Address, _ => 0.0);
        var used = silos.ToDictionary(s => s.Address, _ => 0L);
        var perLayer = new Dictionary<(SiloAddress, int), int>();
        var placed = new List<PlannedExpert>();
        var taken = new HashSet<(int Layer, int Expert, SiloAddress Silo)>();
        var layerShare = experts.GroupBy(e => e.Layer).ToDictionary(g => g.Key, g => (int)Math.Ceiling(g.Sum(e => replicas[(e.Layer, e.Expert)]) / (double)silos.Count));
        var items = experts
            .SelectMany(e => Enumerable.Range(0, replicas[(e.Layer, e.Expert)]).Select(r => (Expert: e, Replica: r, Weight: weight[(e.Layer, e.Expert)])))
            .OrderByDescending(i => i.Weight).ThenBy(i => i.Expert.Layer).ThenBy(i => i.Expert.Expert).ThenBy(i => i.Replica)
            .ToList();
        foreach (var (expert, replica, w) in items)
        {
            var candidates = silos.Where(s => used[s.Address] + expert.BytesOn(s) <= s.Budget && !taken.Contains((expert.Layer, expert.Expert, s.Address))).ToList();
            if (candidates.Count == 0)
            {
                continue; // No room anywhere: left unplanned until silos join.
            }

            var previous = current.TargetOf(new ExpertKey("", expert.Layer, expert.Expert, replica));
            var stay = candidates.FirstOrDefault(s => s.Address == previous && assigned[s.Address] + w <= stayBound
                && perLayer.GetValueOrDefault((s.Address, expert.Layer)) < layerShare[expert.Layer]);
            var silo = stay ?? candidates
                .OrderBy(s => s.Gpu ? 0 : 1)
                .ThenBy(s => assigned[s.Address])
                .ThenBy(s => perLayer.GetValueOrDefault((s.Address, expert.Layer)))
                .ThenByDescending(s => s.Budget - used[s.Address])
                .ThenBy(s => s.Address.GetConsistentHashCode())
                .First();
            assigned[silo.Address] += w;
            used[silo.Address] += expert.BytesOn(silo);
            perLayer[(silo.Address, expert.Layer)] = perLayer.GetValueOrDefault((silo.Address, expert.Layer)) + 1;
            placed.Add(new PlannedExpert(expert.Layer, expert.Expert, replica, silo.Address));
            taken.Add((expert.Layer, expert.Expert, silo.Address));
        }

        var next = placed.OrderBy(p => p.Layer).ThenBy(p => p.Expert).ThenBy(p => p.Replica).ToArray();
        if (next.SequenceEqual(current.Experts))
        {
            return current;
        }

        // A valid plan gives way only to one that takes at least half the margin off its busiest silo: moves must pay for themselves.
        var candidate = new MeshPlan(current.Version + 1, next);
        return valid && significant && SiloLoads(candidate, weight, silos).Values.Max() > busiest - (options.MinTokensToRebalance / 2.0) ? current : candidate;
    }

    /// <summary>Replica counts: an expert with at least HotExpertFactor × its layer's mean load gets load/mean replicas (capped).</summary>
    private static Dictionary<(int, int), int> Replicas(IReadOnlyList<PlannerExpert> experts, IReadOnlyDictionary<(int Layer, int Expert), long> load, int silos, BalancerOptions options)
    {
        var result = new Dictionary<(int, int), int>();
        foreach (var layer in experts.GroupBy(e => e.Layer))
        {
            var mean = layer.Average(e => (double)load.GetValueOrDefault((e.Layer, e.Expert)));
            foreach (var e in layer)
            {
                var tokens = load.GetValueOrDefault((e.Layer, e.Expert));
                result[(e.Layer, e.Expert)] = mean > 0 && tokens >= options.HotExpertFactor * mean && tokens >= options.MinTokensToReplicate
                    ? Math.Clamp((int)Math.Ceiling(tokens / mean), 1, Math.Min(Math.Max(1, options.MaxReplicas), silos))
                    : 1;
            }
        }

        return result;
    }

    /// <summary>
    /// Whether <paramref name="current"/> places every replica wanted on live silos within budget and every
    /// silo holds at least its share of replicas (mean / threshold, rounded down: a silo that joined gets
    /// experts), so that only load could make it change.
    /// </summary>
    private static bool IsValid(MeshPlan current, IReadOnlyList<PlannerExpert> experts, Dictionary<(int, int), int> replicas,
        IReadOnlyList<PlannerSilo> silos, double threshold)
    {
        var live = silos.ToDictionary(s => s.Address);
        if (current.Version == 0 || current.Experts.Any(p => !live.ContainsKey(p.Silo)))
        {
            return false;
        }

        foreach (var e in experts)
        {
            if (Math.Max(1, current.Replicas(e.Layer, e.Expert)) != replicas[(e.Layer, e.Expert)] || current.TargetOf(new ExpertKey("", e.Layer, e.Expert)) is null)
            {
                return false;
            }
        }

        var byKey = experts.ToDictionary(e => (e.Layer, e.Expert));
        var used = silos.ToDictionary(s => s.Address, _ => 0L);
        var counts = silos.ToDictionary(s => s.Address, _ => 0);
        foreach (var p in current.Experts)
        {
            used[p.Silo] += byKey.TryGetValue((p.Layer, p.Expert), out var e) ? e.BytesOn(live[p.Silo]) : 0;
            counts[p.Silo]++;
        }

        var share = Math.Floor(counts.Values.Average() / threshold);
        return silos.All(s => used[s.Address] <= s.Budget) && counts.Values.All(c => c >= share);
    }

    /// <summary>The load each silo carries under <paramref name="plan"/>.</summary>
    private static Dictionary<SiloAddress, double> SiloLoads(MeshPlan plan, Dictionary<(int, int), double> weight, IReadOnlyList<PlannerSilo> silos)
    {
        var load = silos.ToDictionary(s => s.Address, _ => 0.0);
        foreach (var p in plan.Experts.Where(p => load.ContainsKey(p.Silo)))
        {
            load[p.Silo] += weight.GetValueOrDefault((p.Layer, p.Expert));
        }

        return load;
    }
}
