using Orleans.MoE.Runtime.Configuration;
using Orleans.MoE.Runtime.Hosting;
using Orleans.MoE.Runtime.Placement;
using Orleans.MoE.Runtime.Serialization;
using Orleans.MoE.Runtime.Testing;
using Orleans.MoE.Runtime.Tests.Grains;

namespace Orleans.MoE.Runtime.Tests;

public sealed class PlacementAndLifecycleTests
{
    [Fact]
    public async Task Capability_placement_only_uses_silos_that_publish_the_capability()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var gpu = await cluster.StartAdditionalSiloAsync(silo => silo.Configure<SiloOptions>(o => o.Metadata["gpu"] = "true"));
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(gpu.Address.ToString(), await cluster.Silos[i % 2].GrainFactory.GetGrain<IGpuGrain>($"g{i}").Silo());
        }
    }

    [Fact]
    public async Task Prefer_local_placement_activates_on_the_calling_silo()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        foreach (var silo in cluster.Silos)
        {
            Assert.Equal(silo.Address.ToString(), await silo.GrainFactory.GetGrain<ILocalGrain>($"local-{silo.Address.Port}").Silo());
        }
    }

    [Fact]
    public async Task A_custom_director_sees_the_silos_and_decides()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var highest = cluster.Silos.MaxBy(s => s.Address.Port)!.Address.ToString();
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(highest, await cluster.Silos[i % 3].GrainFactory.GetGrain<IPinnedGrain>($"p{i}").Silo());
        }
    }

    [Fact]
    public async Task Directors_see_capacity_the_silos_publish_while_running_and_every_silos_load()
    {
        await using var cluster = await TestCluster.StartAsync(3, silo => silo.Configure<SiloOptions>(o => o.Metadata[SiloMetadataKeys.MemoryFree] = "1000"));
        var (first, second, third) = (cluster.Silos[0], cluster.Silos[1], cluster.Silos[2]);
        await third.Metadata.PublishAsync(new Dictionary<string, string?> { [SiloMetadataKeys.MemoryFree] = "1250" });

        // The first grain goes to the silo with the most memory; each activation publishes its share
        // taken, so the next ones follow the capacity that is left.
        Assert.True(await Eventually.TrueAsync(() => first.ClusterSilos.Single(s => s.Address == third.Address).Metadata[SiloMetadataKeys.MemoryFree] == "1250"));
        Assert.Equal(third.Address.ToString(), await first.GrainFactory.GetGrain<IMemoryHungryGrain>("m0").Silo());
        Assert.Equal("1150", third.Metadata.Current[SiloMetadataKeys.MemoryFree]);
        Assert.True(await Eventually.TrueAsync(() => first.ClusterSilos.Single(s => s.Address == third.Address).Metadata[SiloMetadataKeys.MemoryFree] == "1150"));
        Assert.Equal(third.Address.ToString(), await first.GrainFactory.GetGrain<IMemoryHungryGrain>("m1").Silo());
        Assert.True(await Eventually.TrueAsync(() => first.ClusterSilos.Single(s => s.Address == third.Address).Metadata[SiloMetadataKeys.MemoryFree] == "1050"));
        await second.Metadata.PublishAsync(new Dictionary<string, string?> { [SiloMetadataKeys.MemoryFree] = "5000" });
        Assert.True(await Eventually.TrueAsync(() => first.ClusterSilos.Single(s => s.Address == second.Address).Metadata[SiloMetadataKeys.MemoryFree] == "5000"));
        Assert.Equal(second.Address.ToString(), await first.GrainFactory.GetGrain<IMemoryHungryGrain>("m2").Silo());

        // Load: every silo's activation count reaches every other silo (from probes or heartbeats).
        foreach (var silo in cluster.Silos)
        {
            Assert.Equal(3, silo.ClusterSilos.Count);
            Assert.All(silo.ClusterSilos, s => Assert.True(s.Metadata.ContainsKey(SiloMetadataKeys.Activations)));
        }

        Assert.True(await Eventually.TrueAsync(() => first.ClusterSilos.Single(s => s.Address == third.Address).Activations >= 2));
    }

    [Fact]
    public async Task Random_placement_spreads_grains_over_silos()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var places = await Task.WhenAll(Enumerable.Range(0, 60).Select(i => cluster.GrainFactory.GetGrain<ICounterGrain>($"spread-{i}").Where()));
        Assert.Equal(3, places.Select(p => p.Split('/')[0]).Distinct().Count());
    }

    [Fact]
    public async Task Tensor_payloads_cross_silos_as_raw_bytes()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var values = Enumerable.Range(0, 256 * 64).Select(i => (float)i).ToArray();
        foreach (var silo in cluster.Silos)
        {
            for (var key = 0; key < 4; key++)
            {
                using var result = await silo.GrainFactory.GetGrain<ITensorGrain>(key).Scale(TensorPayload.FromSingles(values, 256, 64), 0.5f);
                Assert.Equal([256, 64], result.Shape);
                Assert.Equal(values.Select(v => v * 0.5f), result.AsSingles().ToArray());
            }
        }
    }

    [Fact]
    public async Task Idle_grains_are_collected_after_their_age_limit()
    {
        await using var cluster = await TestCluster.StartAsync(1, silo => silo.Configure<GrainCollectionOptions>(o => o.CollectionQuantum = TimeSpan.FromMilliseconds(100)));
        var before = IdleGrain.Deactivations;
        await cluster.GrainFactory.GetGrain<IIdleGrain>("idle").Ping();
        Assert.True(await Eventually.TrueAsync(() => IdleGrain.Deactivations > before), "the idle grain was never collected");
        Assert.DoesNotContain(cluster.Primary.ActiveGrains, g => g.Key == "idle");
    }

    [Fact]
    public async Task Deactivate_on_idle_ends_the_activation_and_the_next_call_makes_a_new_one()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var grain = cluster.GrainFactory.GetGrain<ICounterGrain>("deactivate");
        await grain.Add(5);
        var first = await grain.Where();
        await grain.Deactivate();
        await Task.Delay(200);
        Assert.Equal(0, await grain.Current());
        Assert.NotEqual(first, await grain.Where());
    }

    [Fact]
    public async Task Migration_moves_an_activation_with_its_state()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var grain = cluster.GrainFactory.GetGrain<IMigratingGrain>("mover");
        await grain.Store("precious");
        var from = await grain.Silo();
        var target = cluster.Silos.First(s => s.Address.ToString() != from).Address;

        await cluster.Primary.MigrateAsync(new GrainId(typeof(MigratingGrain).FullName!, "mover"), target);

        Assert.Equal(target.ToString(), await cluster.Silos[1].GrainFactory.GetGrain<IMigratingGrain>("mover").Silo());
        Assert.Equal("precious", await grain.Value());
        Assert.True(await grain.Rehydrated());
    }

    [Fact]
    public async Task Graceful_shutdown_migrates_grains_that_can_move_and_deactivates_the_rest()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var leaving = cluster.Silos[2];
        var movers = Enumerable.Range(0, 30).Select(i => $"m{i}").ToList();
        foreach (var key in movers)
        {
            await cluster.GrainFactory.GetGrain<IMigratingGrain>(key).Store(key + "-state");
        }

        var onLeaving = movers.Where(k => leaving.ActiveGrains.Any(g => g.Key == k)).ToList();
        Assert.NotEmpty(onLeaving);
        await cluster.StopSiloAsync(leaving);

        foreach (var key in movers)
        {
            var grain = cluster.Primary.GrainFactory.GetGrain<IMigratingGrain>(key);
            Assert.Equal(key + "-state", await grain.Value());
            Assert.NotEqual(leaving.Address.ToString(), await grain.Silo());
        }
    }

    [Fact]
    public async Task Filters_run_around_incoming_and_outgoing_calls()
    {
        await using var cluster = await TestCluster.StartAsync(1, silo => silo.AddIncomingGrainCallFilter<RecordingIncomingFilter>().AddOutgoingGrainCallFilter<RecordingOutgoingFilter>());
        var grain = cluster.GrainFactory.GetGrain<ISlowGrain>(400);
        await grain.PingPong(401, 2);
        Assert.Contains(RecordingIncomingFilter.Seen, s => s.EndsWith("PingPong", StringComparison.Ordinal));
        Assert.Contains(RecordingOutgoingFilter.Seen, s => s.EndsWith("PingPong", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Options_are_validated_at_start()
    {
        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() =>
            TestCluster.StartAsync(1, silo => silo.Configure<MessagingOptions>(o => o.MaxMessageSize = 10)));
        Assert.Contains("MaxMessageSize", error.Message);
        var collection = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() =>
            TestCluster.StartAsync(1, silo => silo.Configure<GrainCollectionOptions>(o => o.CollectionAge = TimeSpan.Zero)));
        Assert.Contains("CollectionAge", collection.Message);
    }
}

public sealed class RecordingIncomingFilter : IIncomingGrainCallFilter
{
    public static System.Collections.Concurrent.ConcurrentBag<string> Seen { get; } = [];

    public Task Invoke(GrainCallContext context)
    {
        Seen.Add($"{context.Grain}.{context.Method.Name}");
        return context.Invoke();
    }
}

public sealed class RecordingOutgoingFilter : IOutgoingGrainCallFilter
{
    public static System.Collections.Concurrent.ConcurrentBag<string> Seen { get; } = [];

    public Task Invoke(GrainCallContext context)
    {
        Seen.Add($"{context.Grain}.{context.Method.Name}");
        return context.Invoke();
    }
}
