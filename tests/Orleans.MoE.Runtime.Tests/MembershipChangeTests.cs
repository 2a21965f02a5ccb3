using Orleans.MoE.Runtime.Placement;
using Orleans.MoE.Runtime.Testing;
using Orleans.MoE.Runtime.Tests.Grains;

namespace Orleans.MoE.Runtime.Tests;

public sealed class MembershipChangeTests
{
    [Fact]
    public async Task Grains_keep_a_single_activation_while_silos_join_and_leave()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var keys = Enumerable.Range(0, 40).Select(i => $"churn-{i}").ToList();
        using var stop = new CancellationTokenSource();
        var unavailable = 0;
        var callers = Enumerable.Range(0, 4).Select(async c =>
        {
            var count = 0;
            while (!stop.IsCancellationRequested)
            {
                var silos = cluster.Silos;
                var silo = silos[(c + count) % silos.Count];
                try
                {
                    await silo.GrainFactory.GetGrain<ICounterGrain>(keys[(c * 7 + count) % keys.Count]).Add(1);
                }
                catch (SiloUnavailableException)
                {
                    // A call already on the wire to the silo that left may fail (it may have run); never silently twice.
                    Interlocked.Increment(ref unavailable);
                }

                count++;
            }

            return count;
        }).ToList();

        var joined = await cluster.StartAdditionalSiloAsync();
        await Task.Delay(300);
        var another = await cluster.StartAdditionalSiloAsync();
        await Task.Delay(300);
        await cluster.StopSiloAsync(joined);
        await Task.Delay(300);
        await stop.CancelAsync();
        var calls = (await Task.WhenAll(callers)).Sum();
        Assert.True(calls > 100, $"only {calls} calls went through");
        Assert.True(unavailable <= 4, $"{unavailable} calls failed");

        await Task.Delay(500);
        foreach (var key in keys)
        {
            var hosts = cluster.Silos.Count(s => s.ActiveGrains.Any(g => g.Key == key));
            Assert.True(hosts <= 1, $"{key} is active on {hosts} silos");
            var answers = await Task.WhenAll(cluster.Silos.Select(s => s.GrainFactory.GetGrain<ICounterGrain>(key).Where()));
            Assert.Single(answers.Distinct());
        }

        GC.KeepAlive(another);
    }

    [Fact]
    public async Task A_restarted_silo_is_a_new_incarnation_on_the_same_endpoint()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var old = cluster.Silos[1];
        var grain = old.GrainFactory.GetGrain<ILocalGrain>("restart");
        Assert.Equal(old.Address.ToString(), await grain.Silo());

        var restarted = await cluster.RestartSiloAsync(old);
        Assert.Equal(old.Address.Port, restarted.Address.Port);
        Assert.NotEqual(old.Address.Generation, restarted.Address.Generation);
        Assert.DoesNotContain(old.Address, cluster.Primary.ActiveSilos);
        Assert.Contains(restarted.Address, cluster.Primary.ActiveSilos);
        Assert.NotEqual(old.Address.ToString(), await cluster.Primary.GrainFactory.GetGrain<ILocalGrain>("restart").Silo());
    }

    [Fact]
    public async Task Load_based_placement_prefers_the_less_loaded_silo()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var busy = cluster.Silos[0];
        for (var i = 0; i < 60; i++)
        {
            await busy.GrainFactory.GetGrain<ILocalGrain>($"load-{i}").Silo();
        }

        // Let the probes carry the activation counts around.
        await Task.Delay(1500);
        // Two random choices, the less loaded wins: the idle silo is chosen unless both picks are the busy
        // one (a quarter of the time), so about 75 of 100 land there; random placement would give 50.
        var places = await Task.WhenAll(Enumerable.Range(0, 100).Select(i => busy.GrainFactory.GetGrain<IBalancedGrain>($"b{i}").Silo()));
        var onIdle = places.Count(p => p != busy.Address.ToString());
        Assert.True(onIdle >= 62, $"only {onIdle} of 100 went to the idle silo");
    }
}

public interface IBalancedGrain : IGrainWithStringKey
{
    Task<string> Silo();
}

[ActivationCountBasedPlacement]
public sealed class BalancedGrain : Grain, IBalancedGrain
{
    Task<string> IBalancedGrain.Silo() => Task.FromResult(Silo.ToString());
}
