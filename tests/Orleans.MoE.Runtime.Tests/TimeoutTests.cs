using Orleans.MoE.Runtime.Testing;
using Orleans.MoE.Runtime.Tests.Grains;

namespace Orleans.MoE.Runtime.Tests;

public sealed class TimeoutTests : IAsyncLifetime
{
    private TestCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await TestCluster.StartAsync(2);

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    private async Task<ISlowGrain> GrainOnOtherSiloAsync(long key)
    {
        var grain = _cluster.Silos[0].GrainFactory.GetGrain<ISlowGrain>(key);
        await grain.Log();
        return grain;
    }

    [Fact]
    public async Task A_method_timeout_fails_the_call_with_a_timeout()
    {
        var grain = await GrainOnOtherSiloAsync(20);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await Assert.ThrowsAsync<TimeoutException>(() => grain.Hang());
        Assert.InRange(watch.ElapsedMilliseconds, 250, 3000);
    }

    [Fact]
    public async Task Cancelling_the_caller_cancels_the_grain_on_another_silo()
    {
        for (var key = 30; key < 34; key++)
        {
            var grain = _cluster.Silos[1].GrainFactory.GetGrain<ISlowGrain>(key);
            await grain.Log();
            var before = CancelledCount.Value;
            using var cancellation = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => grain.WaitForCancellation(cancellation.Token));
            Assert.True(await Eventually.TrueAsync(() => CancelledCount.Value > before), "the grain's token never fired");
        }
    }
}
