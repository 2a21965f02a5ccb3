using Orleans.MoE.Grains.Placement;
using System.Net;

namespace Orleans.MoE.Grains.Tests;

/// <summary>The balancer's plans: spread, replication of hot experts, hysteresis, budgets, GPU preference.</summary>
public sealed class PlannerTests
{
    private static readonly BalancerOptions Options = new() { MinTokensToReplicate = 100 };

    private static List<PlannerExpert> Experts(int layers = 4, int experts = 8, long bytes = 100) =>
        [.. Enumerable.Range(0, layers).SelectMany(l => Enumerable.Range(0, experts).Select(e => new PlannerExpert(l, e, bytes)))];

    private static PlannerSilo Silo(int port, long budget = 1_000_000, bool gpu = false) => new(SiloAddress.New(new IPEndPoint(IPAddress.Loopback, port), 1), budget, gpu);

    private static Dictionary<(int Layer, int Expert), long> Load(IEnumerable<PlannerExpert> experts, Func<PlannerExpert, long> tokens) =>
        experts.ToDictionary(e => (e.Layer, e.Expert), tokens);

    private static Dictionary<SiloAddress, double> SiloLoad(MeshPlan plan, IReadOnlyDictionary<(int Layer, int Expert), long> load) =>
        plan.Experts.GroupBy(p => p.Silo).ToDictionary(g => g.Key, g => g.Sum(p => (double)Math.Max(1, load.GetValueOrDefault((p.Layer, p.Expert))) / plan.Replicas(p.Layer, p.Expert)));

    [Fact]
    public void An_idle_mesh_spreads_every_layer_evenly_over_the_silos()
    {
        var experts = Experts();
        var silos = new[] { Silo(1), Silo(2), Silo(3) };

        var plan = Planner.Compute(MeshPlan.Empty, experts, new Dictionary<(int, int), long>(), silos, Options);

        Assert.Equal(32, plan.Experts.Length);
        Assert.All(silos, s => Assert.InRange(plan.Experts.Count(p => p.Silo == s.Address), 10, 11));
        foreach (var layer in plan.Experts.GroupBy(p => p.Layer))
        {
            Assert.All(silos, s => Assert.InRange(layer.Count(p => p.Silo == s.Address), 2, 3));
        }
    }

    [Fact]
    public void A_hot_expert_gets_replicas_on_different_silos_and_load_evens_out()
    {
        var experts = Experts(layers: 1);
        var silos = new[] { Silo(1), Silo(2), Silo(3) };
        var load = Load(experts, e => e.Expert == 3 ? 6000 : 500);

        var plan = Planner.Compute(MeshPlan.Empty, experts, load, silos, Options);

        var replicas = plan.Experts.Where(p => p.Expert == 3).ToList();
        Assert.True(replicas.Count >= 2, $"{replicas.Count} replicas");
        Assert.Equal(replicas.Count, replicas.Select(p => p.Silo).Distinct().Count());
        var perSilo = SiloLoad(plan, load);
        Assert.True(perSilo.Values.Max() <= Options.ImbalanceThreshold * perSilo.Values.Average(), string.Join(", ", perSilo.Values));
    }

    [Fact]
    public void Small_changes_in_load_move_nothing_and_a_new_silo_moves_only_its_share()
    {
        var experts = Experts();
        var silos = new List<PlannerSilo> { Silo(1), Silo(2), Silo(3) };
        var load = Load(experts, e => 400 + (e.Expert * 10));
        var plan = Planner.Compute(MeshPlan.Empty, experts, load, silos, Options);

        var shifted = Load(experts, e => (long)((400 + (e.Expert * 10)) * (e.Expert % 2 == 0 ? 1.1 : 0.9)));
        Assert.Same(plan, Planner.Compute(plan, experts, shifted, silos, Options));

        silos.Add(Silo(4));
        var next = Planner.Compute(plan, experts, load, silos, Options);
        Assert.Equal(plan.Version + 1, next.Version);
        var moved = next.Experts.Count(p => plan.TargetOf(new Experts.ExpertKey("m", p.Layer, p.Expert, p.Replica)) != p.Silo);
        Assert.InRange(moved, 6, 12);
        Assert.InRange(next.Experts.Count(p => p.Silo == silos[3].Address), 6, 10);
    }

    [Fact]
    public void Uneven_traffic_too_small_to_judge_moves_nothing()
    {
        var experts = Experts();
        var silos = new[] { Silo(1), Silo(2), Silo(3) };
        var plan = Planner.Compute(MeshPlan.Empty, experts, new Dictionary<(int, int), long>(), silos, Options);
        var random = new Random(7);

        // Rounds of a nearly idle mesh: a few tokens, all on some silo's experts (far above 1.25x the mean, 500 tokens in all).
        for (var round = 0; round < 20; round++)
        {
            var busy = silos[round % 3].Address;
            var noise = Load(experts, e => plan.TargetOf(new Experts.ExpertKey("m", e.Layer, e.Expert)) == busy ? random.Next(40) : 0);
            Assert.Same(plan, Planner.Compute(plan, experts, noise, silos, Options));
        }
    }

    [Fact]
    public void Load_imbalance_moves_experts_only_when_the_move_takes_a_margin_off_the_busiest_silo()
    {
        var experts = Experts();
        var silos = new[] { Silo(1), Silo(2), Silo(3) };
        var plan = Planner.Compute(MeshPlan.Empty, experts, new Dictionary<(int, int), long>(), silos, Options);
        var onFirst = new HashSet<(int, int)>(plan.Experts.Where(p => p.Silo == silos[0].Address).Select(p => (p.Layer, p.Expert)));

        // 1.5x the mean on the first silo but only 500 tokens above it (under MinTokensToRebalance): left alone.
        var mild = Load(experts, e => onFirst.Contains((e.Layer, e.Expert)) ? 150 : 75);
        Assert.Same(plan, Planner.Compute(plan, experts, mild, silos, Options));

        // Thousands of tokens above the mean: rebalanced, and the busiest silo carries less.
        var heavy = Load(experts, e => onFirst.Contains((e.Layer, e.Expert)) ? 900 : 300);
        var next = Planner.Compute(plan, experts, heavy, silos, Options);
        Assert.NotSame(plan, next);
        Assert.True(SiloLoad(next, heavy).Values.Max() < SiloLoad(plan, heavy).Values.Max() - 512);
    }

    [Fact]
    public void An_excess_under_MinTokensToRebalance_moves_nothing_even_when_a_better_plan_exists()
    {
        var experts = Experts();
        var silos = new[] { Silo(1), Silo(2), Silo(3) };
        var plan = Planner.Compute(MeshPlan.Empty, experts, new Dictionary<(int, int), long>(), silos, Options);
        var fullest = plan.Experts.GroupBy(p => p.Silo).MaxBy(g => g.Count())!;
        var onFullest = new HashSet<(int, int)>(fullest.Select(p => (p.Layer, p.Expert)));

        // The silo with the most experts carries about 1.6x the mean, 900-1000 tokens above it: a new plan
        // would take more than half the margin (512) off it, but the excess is under MinTokensToRebalance
        // (1024), so nothing moves.
        var load = Load(experts, e => onFullest.Contains((e.Layer, e.Expert)) ? 230 : 100);
        var perSilo = SiloLoad(plan, load);
        Assert.InRange(perSilo.Values.Max() - perSilo.Values.Average(), 900, 1000);
        Assert.True(perSilo.Values.Max() > Options.ImbalanceThreshold * perSilo.Values.Average());

        Assert.Same(plan, Planner.Compute(plan, experts, load, silos, Options));
    }

    [Fact]
    public void Light_traffic_gives_a_new_plan_no_replicas_and_an_even_spread_by_count()
    {
        var experts = Experts();
        var silos = new[] { Silo(1), Silo(2), Silo(3) };

        // 900 tokens in all (under MinTokensToRebalance), all on two experts of layer 0: too little to judge by.
        var load = Load(experts, e => e is { Layer: 0, Expert: < 2 } ? 450 : 0);
        var plan = Planner.Compute(MeshPlan.Empty, experts, load, silos, Options);

        Assert.Equal(32, plan.Experts.Length);
        Assert.All(plan.Experts, p => Assert.Equal(0, p.Replica));
        Assert.All(silos, s => Assert.InRange(plan.Experts.Count(p => p.Silo == s.Address), 10, 11));
    }

    [Fact]
    public void No_silo_gets_more_weights_than_its_budget_and_what_fits_nowhere_waits()
    {
        var experts = Experts(layers: 2, experts: 8, bytes: 100);
        var silos = new[] { Silo(1, budget: 500), Silo(2, budget: 500) };

        var plan = Planner.Compute(MeshPlan.Empty, experts, new Dictionary<(int, int), long>(), silos, Options);

        Assert.Equal(10, plan.Experts.Length);
        Assert.All(silos, s => Assert.True(plan.Experts.Count(p => p.Silo == s.Address) * 100 <= 500));

        var more = Planner.Compute(plan, experts, new Dictionary<(int, int), long>(), [.. silos, Silo(3, budget: 1000)], Options);
        Assert.Equal(16, more.Experts.Length);
    }

    [Fact]
    public void Gpu_silos_are_filled_first()
    {
        var experts = Experts(layers: 2, experts: 8, bytes: 100);
        var gpu = Silo(9, budget: 1000, gpu: true);
        var silos = new[] { Silo(1), gpu, Silo(2) };

        var plan = Planner.Compute(MeshPlan.Empty, experts, new Dictionary<(int, int), long>(), silos, Options);

        Assert.Equal(10, plan.Experts.Count(p => p.Silo == gpu.Address));
        Assert.Equal(16, plan.Experts.Length);
    }

    [Fact]
    public void A_gpu_silo_is_charged_what_the_device_holds()
    {
        // f16 weights take twice their stored size on a device (widened to f32).
        var experts = Experts(layers: 2, experts: 8, bytes: 100).Select(e => e with { DeviceBytes = 200 }).ToList();
        var gpu = Silo(9, budget: 1000, gpu: true);
        var silos = new[] { Silo(1), gpu };

        var plan = Planner.Compute(MeshPlan.Empty, experts, new Dictionary<(int, int), long>(), silos, Options);

        Assert.Equal(5, plan.Experts.Count(p => p.Silo == gpu.Address));
        Assert.Equal(16, plan.Experts.Length);
    }

    [Fact]
    public void A_deepseek_sized_mesh_is_planned_evenly_and_then_left_alone()
    {
        var experts = Experts(layers: 58, experts: 256, bytes: 44_040_192);
        var silos = Enumerable.Range(1, 16).Select(i => Silo(i, budget: 80L << 30)).ToList();

        var plan = Planner.Compute(MeshPlan.Empty, experts, new Dictionary<(int, int), long>(), silos, Options);

        Assert.Equal(58 * 256, plan.Experts.Length);
        foreach (var layer in plan.Experts.GroupBy(p => p.Layer))
        {
            Assert.All(silos, s => Assert.Equal(16, layer.Count(p => p.Silo == s.Address)));
        }

        Assert.Same(plan, Planner.Compute(plan, experts, new Dictionary<(int, int), long>(), silos, Options));
    }
}
