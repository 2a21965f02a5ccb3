using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Generation;

namespace Orleans.MoE.Grains.Tests;

/// <summary>Gates send one request per destination silo per layer per step, not one per expert.</summary>
public sealed class DispatchTests
{
    private const string Demo = "moe-tiny-py";

    [Fact]
    public async Task A_step_sends_at_most_one_request_per_silo_and_layer()
    {
        await using var mesh = await MeshCluster.StartAsync(0, new Dictionary<string, string> { [Demo] = RepositoryPaths.DemoModel });
        for (var i = 0; i < 3; i++)
        {
            await mesh.AddSiloAsync(silo: s => s.AddOutgoingGrainCallFilter<ExpertRequestCounter>());
        }

        await mesh.WaitForSpreadAsync(Demo);
        var client = new MeshClient(mesh.Client);
        var prompt = Enumerable.Range(0, 40).Select(i => 3 + (i * 97 % 4000)).ToArray();
        var layers = MeshCluster.Model(mesh.Silos[0], Demo).MoeLayers.Count();

        ExpertRequestCounter.Reset();
        var first = await mesh.GenerateAsync(Demo, prompt, 1, client);

        // One step (the 40-token prompt routes to nearly every expert of every layer): at most 3 requests per layer.
        Assert.Single(first);
        Assert.InRange(ExpertRequestCounter.Requests, layers, 3 * layers);
        var experts = mesh.Silos.Sum(s => MeshCluster.Service<LocalExperts>(s).Load.Snapshot().Count);
        Assert.True(experts > 2 * ExpertRequestCounter.Requests, $"{experts} experts ran on {ExpertRequestCounter.Requests} requests");
    }
}

/// <summary>Counts the expert requests the silos send.</summary>
public sealed class ExpertRequestCounter : IOutgoingGrainCallFilter
{
    private static int s_requests;

    public static int Requests => Volatile.Read(ref s_requests);

    public static void Reset() => Volatile.Write(ref s_requests, 0);

    public Task Invoke(IOutgoingGrainCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.InterfaceMethod.Name == nameof(IExpertGrain.ExecuteAsync))
        {
            Interlocked.Increment(ref s_requests);
        }

        return context.Invoke();
    }
}
