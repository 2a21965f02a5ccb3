using Orleans.MoE.Gpu.Benchmarks;
using Orleans.MoE.Gpu.Device;

namespace Orleans.MoE.Gpu.Tests;

/// <summary>The expert-path comparison that tunes the MoE block's limits on a device, on a scaled-down shape.</summary>
public sealed class BenchmarkTests
{
    [Fact]
    public void Expert_paths_are_each_timed_beside_the_chosen_and_the_fastest()
    {
        using var device = GpuDevice.CreateIlgpuCpu();
        using var random = new RandomModels(1L << 20);
        var result = DeviceBenchmarks.ExpertPaths(device, random, ModelShape.Mixtral8x7B.Small(), [2]);

        Assert.Equal("mixtral-8x7b-small", result["shape"]);
        var paths = new[] { "Pairs", "GroupedGemv", "GroupedGemm" };
        var times = paths.ToDictionary(p => p, p => (double)result[$"t2_{p.ToLowerInvariant()}_ms"]!);
        Assert.All(times.Values, ms => Assert.True(ms > 0));
        Assert.Equal(times.MinBy(p => p.Value).Key, result["t2_fastest_path"]);

        // The limits' choice on the CPU accelerator for two tokens: the per-expert products.
        Assert.Equal("GroupedGemm", result["t2_chosen_path"]);
    }
}
