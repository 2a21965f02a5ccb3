using Orleans.MoE.Runtime.Client;
using Orleans.MoE.Runtime.Serialization;
using Orleans.MoE.Runtime.Testing;
using Orleans.MoE.Runtime.Tests.Grains;

namespace Orleans.MoE.Runtime.Tests;

public sealed class ClientTests
{
    [Fact]
    public async Task A_client_calls_grains_on_every_silo_through_its_gateway()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var client = await cluster.ConnectClientAsync();
        var places = new HashSet<string>();
        for (var i = 0; i < 30; i++)
        {
            var grain = client.GrainFactory.GetGrain<ICounterGrain>($"c{i}");
            Assert.Equal(2, await grain.Add(2));
            places.Add((await grain.Where()).Split('/')[0]);
            Assert.Equal(new Point(i, -i, "x!"), await grain.Echo(new Point(i, -i, "x")));
        }

        Assert.Equal(3, places.Count);
        await Assert.ThrowsAsync<InvalidOperationException>(() => client.GrainFactory.GetGrain<ICounterGrain>("c0").Fail("bad"));
        using var scaled = await client.GrainFactory.GetGrain<ITensorGrain>(3).Scale(TensorPayload.FromSingles([1f, 2f], 2), 3f);
        Assert.Equal([3f, 6f], scaled.AsSingles().ToArray());
    }

    [Fact]
    public async Task A_client_finds_gateways_from_a_static_list()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await using var client = new ClusterClient(new ClusterClientOptions
        {
            ClusterId = cluster.ClusterId,
            ClusterSecret = cluster.ClusterSecret,
            Gateways = cluster.Silos.Select(s => s.Address.EndPoint).ToList(),
        });
        await client.ConnectAsync();
        Assert.Equal(1, await client.GrainFactory.GetGrain<ICounterGrain>("static").Add(1));
    }

    [Fact]
    public async Task When_its_gateway_dies_the_client_fails_over_to_another()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var client = await cluster.ConnectClientAsync();
        Assert.Equal(1, await client.GrainFactory.GetGrain<ICounterGrain>("before").Add(1));
        var gateway = cluster.Silos.Single(s => s.Address.ToString() == client.Gateway);
        cluster.KillSilo(gateway);
        for (var i = 0; i < 10; i++)
        {
            var grain = client.GrainFactory.GetGrain<ICounterGrain>($"after-{i}");
            try
            {
                Assert.Equal(1, await grain.Add(1));
            }
            catch (SiloUnavailableException)
            {
                // A call that left through the dying gateway fails (it may or may not have run); the next goes elsewhere.
                Assert.InRange(await grain.Add(1), 1, 2);
            }
        }

        Assert.NotEqual(gateway.Address.ToString(), client.Gateway);
    }

    [Fact]
    public async Task A_client_cancellation_reaches_the_grain()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var client = await cluster.ConnectClientAsync();
        var grain = client.GrainFactory.GetGrain<ISlowGrain>(900);
        await grain.Log();
        var before = CancelledCount.Value;
        using var cancellation = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => grain.WaitForCancellation(cancellation.Token));
        Assert.True(await Eventually.TrueAsync(() => CancelledCount.Value > before), "the grain's token never fired");
    }
}
