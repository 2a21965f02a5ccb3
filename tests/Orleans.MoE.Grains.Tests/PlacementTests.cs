using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Placement;

namespace Orleans.MoE.Grains.Tests;

/// <summary>Scale-out, capacity, graceful leave and a plan that survives a restart of the whole cluster.</summary>
public sealed class PlacementTests
{
    private const string Demo = "moe-tiny-py";

    private static Dictionary<string, string> DemoModels => new() { [Demo] = RepositoryPaths.DemoModel };

    private static int TotalExperts(MeshCluster mesh)
    {
        var model = MeshCluster.Model(mesh.Silos[0], Demo);
        return model.MoeLayers.Sum(l => model.MoeBlock(l).ExpertCount);
    }

    /// <summary>
    /// Every expert active once, on every silo, and no silo above the balancer's imbalance threshold
    /// (1.25) times the mean (the hysteresis leaves anything below it alone).
    /// </summary>
    private static bool Balanced(MeshCluster mesh, int total)
    {
        var counts = mesh.ExpertsBySilo().Values.Select(v => v.Count).ToList();
        return counts.Sum() == total && counts.All(c => c > 0) && counts.Max() <= Math.Ceiling(1.25 * total / counts.Count);
    }

    [Fact]
    public async Task Experts_spread_onto_silos_that_join_and_outputs_stay_the_same()
    {
        await using var mesh = await MeshCluster.StartAsync(1, DemoModels);
        var prompt = GenerationTests.Prompts[0];
        var total = TotalExperts(mesh);
        await mesh.WaitForAllExpertsAsync(Demo);
        Assert.Equal(total, MeshCluster.Service<LocalExperts>(mesh.Silos[0]).Hosted.Count);

        await mesh.AddSiloAsync();
        await mesh.AddSiloAsync();

        // The balancer moves experts onto the new silos until none carries more than the imbalance threshold over the mean.
        Assert.True(await Eventually.TrueAsync(() => Balanced(mesh, total), 20),
            "experts spread: " + string.Join(", ", mesh.ExpertsBySilo().Select(s => s.Value.Count)));
        foreach (var layer in mesh.ExpertsBySilo().Values.SelectMany(v => v).GroupBy(k => k.Layer))
        {
            Assert.True(mesh.ExpertsBySilo().Values.Count(v => v.Any(k => k.Layer == layer.Key)) >= 2, $"layer {layer.Key} is spread over silos");
        }

        Assert.Equal(GenerationTests.Expected(prompt, 12), await mesh.GenerateAsync(Demo, prompt, 12));
    }

    [Fact]
    public async Task A_lightly_loaded_mesh_moves_nothing_over_many_balancer_rounds()
    {
        await using var mesh = await MeshCluster.StartAsync(3, DemoModels);
        await mesh.WaitForSpreadAsync(Demo);
        await mesh.WaitForSettledAsync(Demo);
        var plan = MeshCluster.GrainFactory(mesh.Silos[0]).GetGrain<IMeshPlanGrain>(Demo);
        var version = (await plan.GetPlanAsync()).Version;
        int Moves() => mesh.Silos.Sum(s => MeshCluster.Service<Diagnostics.MeshMetrics>(s).RecentEvents.Count(e => e.Description.Contains(" moved to ", StringComparison.Ordinal)));
        var moves = Moves();

        // A trickle of short requests (small, uneven loads: what a nearly idle cluster sees) for about 12
        // rounds of the 300 ms balancer.
        var rounds = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; rounds.Elapsed < TimeSpan.FromSeconds(3.6); i++)
        {
            await mesh.GenerateAsync(Demo, GenerationTests.Prompts[i % GenerationTests.Prompts.Length], 2);
            await Task.Delay(100);
        }

        var events = string.Join("\n", mesh.Silos.SelectMany(s => MeshCluster.Service<Diagnostics.MeshMetrics>(s).RecentEvents).OrderBy(e => e.Time).Select(e => $"{e.Time:HH:mm:ss.fff} {e.Description}"));
        Assert.True(moves == Moves(), $"v{version} -> v{(await plan.GetPlanAsync()).Version}\n{events}");
        Assert.Equal(version, (await plan.GetPlanAsync()).Version);
    }

    [Fact]
    public async Task A_model_larger_than_one_silo_serves_once_enough_silos_joined()
    {
        long expertBytes;
        using (var model = Orleans.MoE.Models.ModelLoader.Load(RepositoryPaths.DemoModel))
        {
            expertBytes = model.Layers.Select(l => l.FeedForward).OfType<Orleans.MoE.Models.Layers.SparseMoeBlock>().Sum(b => b.Experts.Sum(e => e.WeightBytes));
        }

        await using var mesh = await MeshCluster.StartAsync(1, DemoModels, o => o.ExpertMemoryBytes = (long)(expertBytes * 0.4));

        // No room for the rest: a clear error within seconds (not after the whole retry window).
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var refused = await Assert.ThrowsAsync<Gates.MeshStepException>(() => mesh.GenerateAsync(Demo, GenerationTests.Prompts[1], 4));
        Assert.Contains("no silo has room for expert", refused.Message);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(15), $"refused after {watch.Elapsed}");

        await mesh.AddSiloAsync();
        await mesh.AddSiloAsync();
        // The new silos' budgets reach every silo's placement with the next table reads.
        Assert.True(await Eventually.TrueAsync(() => mesh.Silos.All(s => MeshCluster.Service<Cluster.MeshSilos>(s).Live
            .Count(i => i.Metadata.ContainsKey(Cluster.SiloMetadataKeys.Model(Demo)) && i.Metadata.ContainsKey(Cluster.SiloMetadataKeys.MemoryFree)) == 3), 20),
            "every silo sees the three silos' budgets");

        Assert.Equal(GenerationTests.Expected(GenerationTests.Prompts[1], 10), await mesh.GenerateAsync(Demo, GenerationTests.Prompts[1], 10));
        Assert.All(mesh.Silos, s => Assert.True(MeshCluster.Service<LocalExperts>(s).Reserved <= (long)(expertBytes * 0.4), "no silo exceeds its budget"));
    }

    [Fact]
    public async Task A_silo_leaving_gracefully_moves_its_experts_off_first()
    {
        await using var mesh = await MeshCluster.StartAsync(3, DemoModels);
        var prompt = GenerationTests.Prompts[3];
        var total = TotalExperts(mesh);
        await mesh.WaitForAllExpertsAsync(Demo);
        var leaving = mesh.Silos[2];
        Assert.True(await Eventually.TrueAsync(() => Balanced(mesh, total), 20), "the balancer gives the third silo its share");

        await mesh.Cluster.StopSiloAsync(leaving);

        // Every expert is already active on the remaining silos: nothing waits for a reactivation.
        Assert.Equal(total, mesh.Silos.Sum(s => MeshCluster.Service<LocalExperts>(s).Hosted.Count));
        Assert.Equal(GenerationTests.Expected(prompt, 10), await mesh.GenerateAsync(Demo, prompt, 10));
    }

    [Fact]
    public async Task The_plan_and_load_history_survive_a_restart_of_the_whole_cluster()
    {
        var storage = new SharedGrainStorage();
        MeshStatus before;
        await using (var mesh = await MeshCluster.StartAsync(2, DemoModels, silo: storage.AddTo))
        {
            await mesh.GenerateAsync(Demo, GenerationTests.Prompts[0], 8);
            await MeshCluster.Service<BalancerAgent>(mesh.Silos[0]).BalanceOnceAsync();
            before = await MeshCluster.GrainFactory(mesh.Silos[0]).GetGrain<IMeshPlanGrain>(Demo).GetStatusAsync();
            Assert.True(before.Plan.Version > 0);
        }

        await using var restarted = await MeshCluster.StartAsync(2, DemoModels, silo: storage.AddTo);
        var after = await MeshCluster.GrainFactory(restarted.Silos[0]).GetGrain<IMeshPlanGrain>(Demo).GetStatusAsync();
        Assert.Equal(before.Fingerprint, after.Fingerprint);
        Assert.True(after.Plan.Version >= before.Plan.Version, "the plan's version continues");
        Assert.True(after.HistoryRounds >= before.HistoryRounds, "the load history is kept");
    }

    [Fact]
    public async Task A_cluster_stopped_gracefully_and_restarted_with_new_files_for_a_model_serves_them_at_once()
    {
        var storage = new SharedGrainStorage();
        string? before;
        await using (var mesh = await MeshCluster.StartAsync(1, new Dictionary<string, string> { ["m"] = RepositoryPaths.Fixture("mixtral-tiny") }, silo: storage.AddTo))
        {
            before = (await MeshCluster.GrainFactory(mesh.Silos[0]).GetGrain<IMeshPlanGrain>("m").GetStatusAsync()).Fingerprint;
        }

        // The silo left gracefully and said so: the old files have no holder, nothing to wait for.
        await using var restarted = await MeshCluster.StartAsync(1, new Dictionary<string, string> { ["m"] = RepositoryPaths.Fixture("olmoe-tiny") }, silo: storage.AddTo);
        var after = await MeshCluster.GrainFactory(restarted.Silos[0]).GetGrain<IMeshPlanGrain>("m").GetStatusAsync();

        Assert.NotEqual(before, after.Fingerprint);
        Assert.Equal(MeshCluster.Model(restarted.Silos[0], "m").Fingerprint, after.Fingerprint);
        Assert.Empty(after.RejectedSilos);
    }
}
