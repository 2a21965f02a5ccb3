using Orleans.MoE.Runtime.Testing;
using Orleans.MoE.Runtime.Tests.Grains;

namespace Orleans.MoE.Runtime.Tests;

public sealed class KeyAndSignatureTests
{
    [Fact]
    public async Task Guid_keys_value_tasks_and_inherited_methods_work_across_silos()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var key = Guid.NewGuid();
        var grain = cluster.Silos[1].GrainFactory.GetGrain<IKeyedGuidGrain>(key);
        Assert.Equal(key, await grain.Key());
        await grain.Touch();
        await grain.Touch();
        Assert.Equal("guid:2", await cluster.Silos[0].GrainFactory.GetGrain<IKeyedGuidGrain>(key).Name());
    }

    [Fact]
    public async Task Compound_keys_keep_the_integer_and_the_extension_apart()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        Assert.Equal("42+gpu", await cluster.GrainFactory.GetGrain<ICompoundGrain>(42, "gpu").Describe());
        Assert.Equal("42+cpu", await cluster.GrainFactory.GetGrain<ICompoundGrain>(42, "cpu").Describe());
        Assert.Equal(2, cluster.Primary.ActiveGrains.Count(g => g.Key.StartsWith("42+", StringComparison.Ordinal)));
    }
}
