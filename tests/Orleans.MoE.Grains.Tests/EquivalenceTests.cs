using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Models.Verification;
using Xunit.Abstractions;

namespace Orleans.MoE.Grains.Tests;

/// <summary>The mesh computes what one process computes: every fixture and the demo model, experts spread over three silos.</summary>
public sealed class EquivalenceTests(ITestOutputHelper output)
{
    public static TheoryData<string> Models => new()
    {
        "mixtral-tiny", "mixtral-tiny-bf16", "qwen2moe-tiny", "qwen3moe-tiny", "olmoe-tiny", "deepseekv3-tiny", "moe-tiny-py",
    };

    [Theory]
    [MemberData(nameof(Models))]
    public async Task Reproduces_the_reference_with_experts_on_three_silos(string name)
    {
        var path = name == "moe-tiny-py" ? RepositoryPaths.DemoModel : RepositoryPaths.Fixture(name);
        await using var mesh = await MeshCluster.StartAsync(3, new Dictionary<string, string> { [name] = path });
        var silo = mesh.Silos[0];
        var model = MeshCluster.Model(silo, name);

        var checks = await Task.Run(() => ReferenceVerifier.Verify(model.Network, Path.Combine(path, "reference.safetensors"), name, MeshCluster.Executor(silo, name)).ToList());

        Assert.NotEmpty(checks);
        foreach (var check in checks)
        {
            output.WriteLine($"{check.Check}: max |diff| {check.MaxAbsDiff:E2} (tolerance {check.Tolerance:E2})");
        }

        Assert.All(checks, c => Assert.True(c.Passed, $"{c.Check}: |diff| {c.MaxAbsDiff} > {c.Tolerance} {c.Detail}"));
        // Bit for bit what one process computes: the experts see the same rows and the gate sums in the same order.
        int[] tokens = [1, 5, 9, 2, 7, 3, 11, 4];
        var single = model.Network.Forward(tokens, model.Network.CreateCache(tokens.Length), allLogits: true);
        var distributed = (await model.Network.ForwardBatchAsync([new Orleans.MoE.Models.SequenceStep(tokens, model.Network.CreateCache(tokens.Length))], MeshCluster.Executor(silo, name), allLogits: true))[0];
        Assert.Equal(single, distributed);

        await mesh.WaitForSpreadAsync(name);
        await mesh.WaitForSettledAsync(name);
        var bySilo = mesh.ExpertsBySilo();
        Assert.All(bySilo, s => Assert.NotEmpty(s.Value));
        var total = model.MoeLayers.Sum(l => model.MoeBlock(l).ExpertCount);
        Assert.Equal(total, bySilo.Values.Sum(v => v.Count));
        Assert.Equal(total, bySilo.Values.SelectMany(v => v).Distinct().Count());
        // Orleans' directory agrees: a call to each expert lands on the activation its silo hosts. The balancer
        // may move an expert between the two looks, so they are taken again until they agree.
        var mismatches = new List<string>();
        Assert.True(await Eventually.TrueAsync(async () =>
        {
            mismatches.Clear();
            foreach (var (key, address) in mesh.ExpertsBySilo().SelectMany(s => s.Value.Select(k => (Key: k, s.Key.SiloAddress))))
            {
                var info = await MeshCluster.GrainFactory(silo).GetGrain<IExpertGrain>(key.ToString()).DescribeAsync();
                if (!info.Silo.Equals(address))
                {
                    mismatches.Add($"{key}: hosted on {address}, answered from {info.Silo}");
                }
            }

            return mismatches.Count == 0;
        }, 20), string.Join("; ", mismatches));
    }
}
