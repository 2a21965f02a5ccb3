using Orleans.MoE.Grains.Diagnostics;
using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Generation;

namespace Orleans.MoE.Grains.Tests;

/// <summary>Gates send one batch per destination silo per layer per step, not one per expert.</summary>
public sealed class DispatchTests
{
    private const string Demo = "moe-tiny-py";

    [Fact]
    public async Task A_step_sends_at_most_one_request_per_silo_and_layer()
    {
        await using var mesh = await MeshCluster.StartAsync(0, new Dictionary<string, string> { [Demo] = RepositoryPaths.DemoModel });
        for (var i = 0; i < 3; i++)
        {
            await mesh.AddSiloAsync();
        }

        await mesh.WaitForSpreadAsync(Demo);
        await mesh.WaitForSettledAsync(Demo); // no expert mid-move: a batch to a silo it just left is sent again
        var client = new MeshClient(mesh.Client);
        var prompt = Enumerable.Range(0, 40).Select(i => 3 + (i * 97 % 4000)).ToArray();
        var layers = MeshCluster.Model(mesh.Silos[0], Demo).MoeLayers.Count();

        long Batches() => mesh.Silos.Sum(s => MeshCluster.Service<MeshMetrics>(s).ExpertBatches);
        var before = Batches();
        var first = await mesh.GenerateAsync(Demo, prompt, 1, client);

        // One step (the 40-token prompt routes to nearly every expert of every layer, spread over 3 silos):
        // the gate runs its own silo's experts in place and sends one batch to each of the 2 others per layer.
        Assert.Single(first);
        var batches = Batches() - before;
        Assert.InRange(batches, layers, 2 * layers);
        var experts = mesh.Silos.Sum(s => MeshCluster.Service<LocalExperts>(s).Load.Snapshot().Count);
        Assert.True(experts > 2 * batches, $"{experts} experts ran on {batches} batches");
    }
}
