using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Models;

namespace Orleans.MoE.Gpu.Tests;

/// <summary>
/// A long prefill attends in chunks of queries whose scores fit <see cref="GpuOptions.AttentionScratchBytes"/>;
/// the logits are those of one pass, bit for bit, for grouped-query attention (Mixtral) and for DeepSeek's
/// latent attention, from an empty cache and after a prefix.
/// </summary>
public sealed class PrefillTests
{
    [Theory]
    [InlineData("mixtral-tiny")]
    [InlineData("deepseekv3-tiny")]
    public void Chunked_attention_gives_the_logits_of_one_pass(string fixture)
    {
        using var cpu = ModelLoader.Load(RepositoryPaths.Fixture(fixture));
        var prompt = Enumerable.Range(0, 37).Select(i => 1 + (i * 7 % (cpu.VocabSize - 1))).ToArray();
        var whole = Run(cpu, prompt, GpuOptions.Default);

        // One query at a time, and a few (4 KiB of scores: fewer queries a chunk as the positions grow).
        foreach (var budget in new long[] { 1, 4096 })
        {
            var chunked = Run(cpu, prompt, new GpuOptions { AttentionScratchBytes = budget });
            Assert.Equal(whole.Prefix, chunked.Prefix);
            Assert.Equal(whole.After, chunked.After);
        }
    }

    /// <summary>All logits of the prompt from an empty cache, then of the prompt again after it (start 37).</summary>
    private static (float[] Prefix, float[] After) Run(CausalLanguageModel cpu, int[] prompt, GpuOptions options)
    {
        using var device = GpuDevice.CreateIlgpuCpu(options);
        using var model = GpuModel.Upload(device, cpu);
        using var sequence = model.CreateSequence(2 * prompt.Length);
        var prefix = model.Forward(prompt, sequence, allLogits: true);
        var after = model.Forward(prompt, sequence, allLogits: true);
        return (prefix, after);
    }
}
