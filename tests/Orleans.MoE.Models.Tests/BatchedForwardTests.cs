namespace Orleans.MoE.Models.Tests;

public sealed class BatchedForwardTests
{
    [Theory]
    [InlineData("qwen2moe-tiny")]
    [InlineData("deepseekv3-tiny")]
    public void A_batched_step_equals_each_sequence_on_its_own(string fixture)
    {
        using var model = ModelLoader.Load(Path.Combine(RepositoryPaths.Fixtures, fixture));
        int[][] prompts = [[1, 2, 3, 4, 5], [9, 8], [300, 301, 302]];

        var alone = prompts.Select(p =>
        {
            var cache = model.CreateCache();
            var first = model.Forward(p, cache, allLogits: true);
            return (first, next: model.Forward([7], cache));
        }).ToArray();

        var caches = prompts.Select(_ => model.CreateCache()).ToArray();
        var batched = model.ForwardBatch(prompts.Select((p, i) => new SequenceStep(p, caches[i])).ToArray(), allLogits: true);
        var nextBatched = model.ForwardBatch(caches.Select(c => new SequenceStep(new[] { 7 }, c)).ToArray());

        for (var i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(prompts[i].Length + 1, caches[i].Length);
            Assert.All(alone[i].first.Zip(batched[i]), p => Assert.Equal(p.First, p.Second, 1e-5f));
            Assert.All(alone[i].next.Zip(nextBatched[i]), p => Assert.Equal(p.First, p.Second, 1e-5f));
        }
    }

    [Fact]
    public void Deepseek_caches_only_the_latent_and_the_rope_key()
    {
        using var model = ModelLoader.Load(Path.Combine(RepositoryPaths.Fixtures, "deepseekv3-tiny"));
        var cache = model.CreateCache();
        model.Forward([1, 2, 3], cache);
        // kv_lora_rank 16 + qk_rope_head_dim 8 per position, instead of 4 heads × (24 + 16).
        Assert.All(cache.Layers, layer => Assert.Equal((24, 0), (layer.KeyWidth, layer.ValueWidth)));
        Assert.Equal(3, cache.Length);
    }

    [Fact]
    public void A_cache_may_appear_only_once_in_a_batch()
    {
        using var model = ModelLoader.Load(Path.Combine(RepositoryPaths.Fixtures, "mixtral-tiny"));
        var cache = model.CreateCache();
        Assert.Throws<ArgumentException>(() => model.ForwardBatch([new SequenceStep(new[] { 1 }, cache), new SequenceStep(new[] { 2 }, cache)]));
    }
}
