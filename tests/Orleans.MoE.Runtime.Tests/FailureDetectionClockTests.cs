using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Orleans.MoE.Runtime.Testing;

namespace Orleans.MoE.Runtime.Tests;

/// <summary>Failure detection on an injected clock: the probe schedule, not the machine's speed, decides.</summary>
public sealed class FailureDetectionClockTests
{
    [Fact]
    public async Task A_killed_silo_is_declared_dead_within_three_seconds_of_probe_time()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var cluster = await TestCluster.StartAsync(3, silo => silo.Services.AddSingleton<TimeProvider>(clock));
        var victim = cluster.Silos[2];
        var observer = cluster.Silos[0];
        cluster.KillSilo(victim);

        var elapsed = TimeSpan.Zero;
        while (observer.ActiveSilos.Contains(victim.Address) && elapsed < TimeSpan.FromSeconds(10))
        {
            clock.Advance(TimeSpan.FromMilliseconds(100));
            elapsed += TimeSpan.FromMilliseconds(100);
            await Task.Delay(30);
        }

        Assert.DoesNotContain(victim.Address, observer.ActiveSilos);
        Assert.True(elapsed <= TimeSpan.FromSeconds(3), $"declared dead after {elapsed.TotalSeconds:F1} s of cluster time");
    }

    [Fact]
    public async Task Live_silos_are_not_declared_dead_however_much_time_passes()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var cluster = await TestCluster.StartAsync(3, silo => silo.Services.AddSingleton<TimeProvider>(clock));
        // Ten seconds of cluster time, at a third of real speed so every ping can answer in time.
        for (var step = 0; step < 100; step++)
        {
            clock.Advance(TimeSpan.FromMilliseconds(100));
            await Task.Delay(30);
        }

        Assert.All(cluster.Silos, s => Assert.Equal(3, s.ActiveSilos.Count));
    }
}
