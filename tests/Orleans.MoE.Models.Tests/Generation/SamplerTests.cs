using Orleans.MoE.Models.Generation;

namespace Orleans.MoE.Models.Tests.Generation;

public sealed class SamplerTests
{
    private static readonly float[] s_logits = [1f, 3f, 2f, -1f, 2.5f];

    [Fact]
    public void Greedy_picks_the_argmax()
    {
        Assert.Equal(1, new Sampler(SamplingOptions.Greedy).Next(s_logits));
    }

    [Fact]
    public void Top_k_of_one_is_greedy_whatever_the_temperature()
    {
        var sampler = new Sampler(new SamplingOptions { Temperature = 5f, TopK = 1, Seed = 7 });
        Assert.All(Enumerable.Range(0, 50), _ => Assert.Equal(1, sampler.Next(s_logits)));
    }

    [Fact]
    public void Top_k_never_samples_outside_the_k_best()
    {
        var sampler = new Sampler(new SamplingOptions { Temperature = 10f, TopK = 3, Seed = 1 });
        var seen = Enumerable.Range(0, 500).Select(_ => sampler.Next(s_logits)).ToHashSet();
        Assert.Equal(new HashSet<int> { 1, 4, 2 }, seen);
    }

    [Fact]
    public void Top_p_keeps_the_smallest_set_reaching_the_mass()
    {
        // Probabilities ≈ [0.6, 0.3, 0.1]: top-p 0.5 keeps only the first, 0.8 the first two.
        float[] logits = [MathF.Log(0.6f), MathF.Log(0.3f), MathF.Log(0.1f)];
        var narrow = new Sampler(new SamplingOptions { Temperature = 1f, TopP = 0.5f, Seed = 3 });
        Assert.All(Enumerable.Range(0, 100), _ => Assert.Equal(0, narrow.Next(logits)));
        var wider = new Sampler(new SamplingOptions { Temperature = 1f, TopP = 0.8f, Seed = 3 });
        Assert.Equal(new HashSet<int> { 0, 1 }, Enumerable.Range(0, 300).Select(_ => wider.Next(logits)).ToHashSet());
    }

    [Fact]
    public void Sampling_follows_the_distribution()
    {
        float[] logits = [MathF.Log(0.7f), MathF.Log(0.2f), MathF.Log(0.1f)];
        var sampler = new Sampler(new SamplingOptions { Temperature = 1f, Seed = 11 });
        var counts = new int[3];
        for (var i = 0; i < 20000; i++)
        {
            counts[sampler.Next(logits)]++;
        }

        Assert.InRange(counts[0] / 20000.0, 0.68, 0.72);
        Assert.InRange(counts[1] / 20000.0, 0.18, 0.22);
        Assert.InRange(counts[2] / 20000.0, 0.08, 0.12);
    }

    [Fact]
    public void A_seeded_sampler_that_skips_k_tokens_continues_as_one_that_sampled_them()
    {
        // A sequence resumed on another silo after k tokens skips them, then samples what it would have.
        var logits = Enumerable.Repeat(0f, 16).ToArray();
        var options = new SamplingOptions { Temperature = 1f, Seed = 5 };
        var whole = new Sampler(options);
        var sampled = Enumerable.Range(0, 40).Select(_ => whole.Next(logits)).ToArray();

        var resumed = new Sampler(options);
        resumed.Skip(8);

        Assert.Equal(sampled[8..], Enumerable.Range(0, 32).Select(_ => resumed.Next(logits)).ToArray());
    }

    [Fact]
    public void The_same_seed_gives_the_same_tokens()
    {
        var options = new SamplingOptions { Temperature = 1.5f, Seed = 42 };
        var a = new Sampler(options);
        var b = new Sampler(options);
        Assert.Equal(Enumerable.Range(0, 100).Select(_ => a.Next(s_logits)), Enumerable.Range(0, 100).Select(_ => b.Next(s_logits)));
    }

    [Theory]
    [InlineData(-0.1f, 0, 1f)]
    [InlineData(float.NaN, 0, 1f)]
    [InlineData(1f, -1, 1f)]
    [InlineData(1f, 0, 0f)]
    [InlineData(1f, 0, 1.5f)]
    public void Invalid_settings_are_refused(float temperature, int topK, float topP)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(new SamplingOptions { Temperature = temperature, TopK = topK, TopP = topP }));
    }
}
