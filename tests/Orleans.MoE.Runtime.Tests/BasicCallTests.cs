using Orleans.MoE.Runtime.Testing;
using Orleans.MoE.Runtime.Tests.Grains;

namespace Orleans.MoE.Runtime.Tests;

public sealed class BasicCallTests : IAsyncLifetime
{
    private TestCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await TestCluster.StartAsync(2);

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task A_grain_activates_on_first_call_and_keeps_its_state()
    {
        var counter = _cluster.GrainFactory.GetGrain<ICounterGrain>("first-call");
        Assert.Equal(5, await counter.Add(5));
        Assert.Equal(7, await counter.Add(2));
        var fromOtherSilo = _cluster.Silos[1].GrainFactory.GetGrain<ICounterGrain>("first-call");
        Assert.Equal(7, await fromOtherSilo.Current());
        Assert.Equal(await counter.Where(), await fromOtherSilo.Where());
    }

    [Fact]
    public async Task Arguments_and_results_of_generated_types_cross_silos()
    {
        foreach (var silo in _cluster.Silos)
        {
            var counter = silo.GrainFactory.GetGrain<ICounterGrain>("types");
            Assert.Equal(new Point(1, 2, "p!"), await counter.Echo(new Point(1, 2, "p")));
            Assert.Equal(Enumerable.Range(0, 1000), await counter.Range(1000));
        }
    }

    [Fact]
    public async Task A_grain_exception_reaches_the_caller_with_its_type_and_message()
    {
        var counter = _cluster.Silos[1].GrainFactory.GetGrain<ICounterGrain>("throws");
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => counter.Fail("no way"));
        Assert.Equal("no way", error.Message);
        Assert.Equal(0, await counter.Current());
    }
}
