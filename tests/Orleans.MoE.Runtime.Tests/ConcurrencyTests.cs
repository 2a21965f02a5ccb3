using Orleans.MoE.Runtime.Testing;
using Orleans.MoE.Runtime.Tests.Grains;

namespace Orleans.MoE.Runtime.Tests;

public sealed class ConcurrencyTests : IAsyncLifetime
{
    private TestCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await TestCluster.StartAsync(3);

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task Many_silos_calling_a_new_grain_at_once_create_one_activation()
    {
        for (var round = 0; round < 20; round++)
        {
            var key = $"race-{round}";
            var calls = _cluster.Silos.SelectMany(silo => Enumerable.Range(0, 10).Select(_ => silo.GrainFactory.GetGrain<ICounterGrain>(key).Add(1))).ToList();
            await Task.WhenAll(calls);
            var answers = await Task.WhenAll(_cluster.Silos.Select(s => s.GrainFactory.GetGrain<ICounterGrain>(key).Where()));
            Assert.Single(answers.Distinct());
            Assert.Equal(30, await _cluster.GrainFactory.GetGrain<ICounterGrain>(key).Current());
            Assert.Equal(1, _cluster.Silos.Count(s => s.ActiveGrains.Any(g => g.Key == key)));
        }
    }

    [Fact]
    public async Task A_non_reentrant_grain_runs_one_request_at_a_time_in_order()
    {
        var grain = _cluster.Silos[1].GrainFactory.GetGrain<ISlowGrain>(7);
        await Task.WhenAll(Enumerable.Range(0, 4).Select(i => grain.Work($"r{i}", 30)));
        var log = await grain.Log();
        Assert.Equal(8, log.Count);
        Assert.All(log.Where(l => l.StartsWith("start")), l => Assert.EndsWith("(1 running)", l));
        for (var i = 0; i < log.Count; i += 2)
        {
            Assert.Equal(log[i].Split(' ')[1], log[i + 1].Split(' ')[1]);
        }
    }

    [Fact]
    public async Task An_always_interleave_method_runs_while_a_request_is_in_progress()
    {
        var grain = _cluster.GrainFactory.GetGrain<ISlowGrain>(8);
        var work = grain.Work("long", 500);
        await Task.Delay(150);
        Assert.Equal(1, await grain.Peek());
        await work;
    }

    [Fact]
    public async Task A_reentrant_grain_interleaves_requests()
    {
        var grain = _cluster.GrainFactory.GetGrain<IReentrantSlowGrain>(1);
        var results = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => grain.Work(200)));
        Assert.True(results.Max() > 1, "requests never overlapped");
    }

    [Fact]
    public async Task A_call_chain_back_into_a_busy_grain_does_not_deadlock()
    {
        var a = _cluster.Silos[0].GrainFactory.GetGrain<ISlowGrain>(100);
        Assert.Equal(6, await a.PingPong(101, 6));
    }

    [Fact]
    public async Task Stateless_workers_run_in_parallel_on_the_calling_silo_up_to_their_limit()
    {
        var silo = _cluster.Silos[2];
        var results = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => silo.GrainFactory.GetGrain<IWorkerGrain>(0).Run(150)));
        var activations = results.Select(r => r.Split('|')[1]).Distinct().Count();
        Assert.All(results, r => Assert.StartsWith(silo.Address.ToString(), r));
        Assert.InRange(activations, 2, 4);
    }

    [Fact]
    public async Task One_way_calls_return_before_the_grain_has_run()
    {
        var grain = _cluster.GrainFactory.GetGrain<IOneWayGrain>("oneway");
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await grain.Record("a");
        Assert.True(watch.ElapsedMilliseconds < 90, $"one-way call waited {watch.ElapsedMilliseconds} ms");
        await Task.Delay(300);
        Assert.Equal(["a"], await grain.Recorded());
    }
}
