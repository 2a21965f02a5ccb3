using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Orleans.MoE.Runtime.Testing;
using Orleans.MoE.Runtime.Tests.Grains;

namespace Orleans.MoE.Runtime.Tests;

/// <summary>Idle collection driven by an injected clock: minutes pass without the test sleeping.</summary>
public sealed class CollectionClockTests
{
    [Fact]
    public async Task Grains_are_collected_after_their_age_on_the_silos_clock_and_keep_alive_ones_never()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var cluster = await TestCluster.StartAsync(1, silo => silo.Services.AddSingleton<TimeProvider>(clock));
        await cluster.GrainFactory.GetGrain<IAgedGrain>("aged").Ping();
        await cluster.GrainFactory.GetGrain<IImmortalGrain>("immortal").Ping();
        await cluster.GrainFactory.GetGrain<ICounterGrain>("default").Add(1);
        bool Active(string key) => cluster.Primary.ActiveGrains.Any(g => g.Key == key);

        // Nine minutes idle: younger than the 10-minute limit.
        for (var minute = 0; minute < 9; minute++)
        {
            clock.Advance(TimeSpan.FromMinutes(1));
            await Task.Delay(20);
        }

        Assert.True(Active("aged") && Active("immortal") && Active("default"));

        // Two more minutes: the aged grain goes; the default limit (15 minutes) and KeepAlive hold the others.
        clock.Advance(TimeSpan.FromMinutes(1));
        await Task.Delay(20);
        clock.Advance(TimeSpan.FromMinutes(1));
        Assert.True(await Eventually.TrueAsync(() => !Active("aged")), "the aged grain was not collected");
        Assert.True(Active("immortal") && Active("default"));

        // Past fifteen minutes the default-aged grain goes too; KeepAlive stays.
        for (var minute = 0; minute < 6; minute++)
        {
            clock.Advance(TimeSpan.FromMinutes(1));
            await Task.Delay(20);
        }

        Assert.True(await Eventually.TrueAsync(() => !Active("default")), "the default-aged grain was not collected");
        Assert.True(Active("immortal"));
    }
}
