using System.Globalization;
using System.Text.Json;
using Orleans.MoE.Models.Architectures;
using Orleans.MoE.Models.Configuration;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Tests.Configuration;

/// <summary>
/// The rotary embeddings RopeFactory builds, checked against frequencies and attention factors
/// computed here from the published formulas. The embedding's inverse frequencies and attention factor
/// are read back from what it does: at position 1 the pair (x_i, x_{i+d/2}) = (1, 0) becomes
/// attention · (cos f_i, sin f_i), so f_i = atan2 and attention = hypot.
/// </summary>
public sealed class RopeFactoryTests
{
    private const string Source = "rope/config.json";

    private static ModelConfig Config(string ropeScaling, int maxPositions = 2048, double theta = 10000) =>
        ModelConfig.Parse(
            string.Create(CultureInfo.InvariantCulture, $$"""
            {"model_type": "mixtral", "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 32,
             "max_position_embeddings": {{maxPositions}}, "rope_theta": {{theta}}, "rope_scaling": {{ropeScaling}}}
            """),
            Source);

    private static (double[] Frequencies, double[] Attention) Measure(RotaryEmbedding rope)
    {
        var half = rope.Dimension / 2;
        var x = new float[rope.Dimension];
        x.AsSpan(0, half).Fill(1);
        rope.Apply(x, 1, rope.Dimension, 0, 1);
        var frequencies = new double[half];
        var attention = new double[half];
        for (var i = 0; i < half; i++)
        {
            frequencies[i] = Math.Atan2(x[i + half], x[i]);
            attention[i] = Math.Sqrt(((double)x[i] * x[i]) + ((double)x[i + half] * x[i + half]));
        }

        return (frequencies, attention);
    }

    private static void AssertRelative(double expected, double actual, double tolerance, string what) =>
        Assert.True(Math.Abs(expected - actual) <= tolerance * Math.Abs(expected), $"{what}: expected {expected}, got {actual}");

    [Fact]
    public void Default_rope_uses_theta_to_the_minus_two_i_over_d()
    {
        var rope = RopeFactory.Create(Config("null", theta: 500000), 16, RopeLayout.Half);
        var (frequencies, attention) = Measure(rope);
        for (var i = 0; i < 8; i++)
        {
            AssertRelative(Math.Pow(500000, -2.0 * i / 16), frequencies[i], 1e-5, $"f[{i}]");
            Assert.Equal(1, attention[i], 6);
        }
    }

    [Fact]
    public void Linear_rope_divides_every_frequency_by_the_factor()
    {
        var rope = RopeFactory.Create(Config("""{"rope_type": "linear", "factor": 4.0}"""), 16, RopeLayout.Half);
        var (frequencies, attention) = Measure(rope);
        for (var i = 0; i < 8; i++)
        {
            AssertRelative(Math.Pow(10000, -2.0 * i / 16) / 4, frequencies[i], 1e-5, $"f[{i}]");
            Assert.Equal(1, attention[i], 6);
        }
    }

    public static TheoryData<string, int, double, int, string> YarnCases() => new()
    {
        // rope_scaling, rotary dim, theta, max_position_embeddings, what it exercises
        { """{"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 64}""", 16, 10000, 512, "defaults: beta 32/1, attention 0.1 ln s + 1" },
        { """{"type": "yarn", "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096, "beta_fast": 32, "beta_slow": 1}""", 64, 10000, 163840, "DeepSeek-V3: mscale ratio 1" },
        { """{"rope_type": "yarn", "factor": 40, "mscale": 0.707, "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096}""", 64, 10000, 163840, "mscale ratio" },
        { """{"rope_type": "yarn", "factor": 40, "mscale": 0.707, "original_max_position_embeddings": 4096}""", 64, 10000, 163840, "mscale without mscale_all_dim is ignored" },
        { """{"rope_type": "yarn", "factor": 4.0, "beta_fast": 16, "beta_slow": 2, "truncate": false, "original_max_position_embeddings": 256}""", 32, 500000, 1024, "custom betas, no truncation" },
        { """{"rope_type": "yarn", "factor": 4.0, "attention_factor": 0.9}""", 32, 1000000, 8192, "explicit attention factor; original context from max_position_embeddings" },
        { """{"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 1}""", 8, 10000, 2, "correction range collapsed to a point" },
    };

    [Theory]
    [MemberData(nameof(YarnCases))]
    public void Yarn_blends_interpolated_and_extrapolated_frequencies_and_scales_attention(string scaling, int dim, double theta, int maxPositions, string what)
    {
        var config = Config(scaling, maxPositions, theta);

        // The parameters, read here from the JSON with the reference's defaults (not through ModelConfig).
        using var json = JsonDocument.Parse(scaling);
        double? Get(string name) => json.RootElement.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
        var factor = Get("factor")!.Value;
        var original = Get("original_max_position_embeddings") ?? maxPositions;
        var betaFast = Get("beta_fast") ?? 32;
        var betaSlow = Get("beta_slow") ?? 1;
        var truncate = !json.RootElement.TryGetProperty("truncate", out var t) || t.ValueKind != JsonValueKind.False;

        // YaRN (Peng et al. 2023) as the reference implements it: dims whose wavelength fits more than
        // beta_fast times in the original context keep their frequency, those fitting fewer than
        // beta_slow times are interpolated (divided by the factor), with a linear ramp between.
        double CorrectionDim(double rotations) => dim * Math.Log(original / (rotations * 2 * Math.PI)) / (2 * Math.Log(theta));
        var low = CorrectionDim(betaFast);
        var high = CorrectionDim(betaSlow);
        if (truncate)
        {
            (low, high) = (Math.Floor(low), Math.Ceiling(high));
        }

        (low, high) = (Math.Max(low, 0), Math.Min(high, dim - 1));
        if (low == high)
        {
            high += 0.001;
        }

        static double Mscale(double scale, double m) => scale <= 1 ? 1 : (0.1 * m * Math.Log(scale)) + 1;
        var attention = Get("attention_factor")
            ?? (Get("mscale") is { } m && Get("mscale_all_dim") is { } all && m != 0 && all != 0
                ? Mscale(factor, m) / Mscale(factor, all)
                : Mscale(factor, 1));

        var (frequencies, measuredAttention) = Measure(RopeFactory.Create(config, dim, RopeLayout.Half));
        Assert.Equal(dim / 2, frequencies.Length);
        for (var i = 0; i < dim / 2; i++)
        {
            var extrapolated = Math.Pow(theta, -2.0 * i / dim);
            var ramp = Math.Clamp((i - low) / (high - low), 0, 1);
            var expected = (extrapolated / factor * ramp) + (extrapolated * (1 - ramp));
            AssertRelative(expected, frequencies[i], 1e-5, $"{what}: f[{i}]");
            AssertRelative(attention, measuredAttention[i], 1e-6, $"{what}: attention of pair {i}");
        }
    }

    [Fact]
    public void Yarn_keeps_high_frequencies_interpolates_low_ones_and_ramps_between()
    {
        // dim 16, theta 10000, original context 64: the correction range is dims [0, 3].
        var config = Config("""{"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 64}""", 512);
        var (frequencies, attention) = Measure(RopeFactory.Create(config, 16, RopeLayout.Half));
        double Plain(int i) => Math.Pow(10000, -2.0 * i / 16);
        AssertRelative(Plain(0), frequencies[0], 1e-6, "f[0] extrapolated");
        AssertRelative(Plain(1) * ((2.0 / 3) + (1.0 / 3 / 8)), frequencies[1], 1e-5, "f[1] a third interpolated");
        AssertRelative(Plain(2) * ((1.0 / 3) + (2.0 / 3 / 8)), frequencies[2], 1e-5, "f[2] two thirds interpolated");
        for (var i = 3; i < 8; i++)
        {
            AssertRelative(Plain(i) / 8, frequencies[i], 1e-5, $"f[{i}] interpolated");
        }

        Assert.All(attention, a => Assert.Equal((0.1 * Math.Log(8)) + 1, a, 6));
    }

    [Fact]
    public void Yarn_attention_factor_scales_the_interleaved_layout_too()
    {
        var config = Config("""{"rope_type": "yarn", "factor": 40, "mscale": 1.0, "mscale_all_dim": 0.5, "original_max_position_embeddings": 4096}""", 163840);
        var rope = RopeFactory.Create(config, 8, RopeLayout.Interleaved);
        float[] x = [1, 0, 1, 0, 1, 0, 1, 0];
        rope.Apply(x, 1, 8, 0, 0);
        var expected = ((0.1 * Math.Log(40)) + 1) / ((0.05 * Math.Log(40)) + 1);
        Assert.All(Enumerable.Range(0, 4), i => Assert.Equal(expected, x[2 * i], 6));
        Assert.All(Enumerable.Range(0, 4), i => Assert.Equal(0f, x[(2 * i) + 1]));
    }
}
