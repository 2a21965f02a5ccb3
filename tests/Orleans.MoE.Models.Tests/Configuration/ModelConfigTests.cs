using Orleans.MoE.Models.Architectures;
using Orleans.MoE.Models.Configuration;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Tests.Configuration;

public sealed class ModelConfigTests
{
    private const string Minimal = """
        {"model_type": "mixtral", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 512%EXTRA%}
        """;

    private static ModelConfig Parse(string extra = "") => ModelConfig.Parse(Minimal.Replace("%EXTRA%", extra), "test/config.json");

    [Fact]
    public void The_older_style_reads_rope_theta_and_torch_dtype_at_top_level()
    {
        var config = Parse(""", "rope_theta": 500000.0, "torch_dtype": "bfloat16" """);
        Assert.Equal(500000.0, config.Rope.Theta);
        Assert.Equal("default", config.Rope.Type);
        Assert.Equal("bfloat16", config.DType);
    }

    [Fact]
    public void The_newer_style_reads_rope_parameters_and_dtype()
    {
        var config = Parse(""", "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"}, "dtype": "float32" """);
        Assert.Equal(1000000.0, config.Rope.Theta);
        Assert.Equal("float32", config.DType);
    }

    [Fact]
    public void Both_fixture_styles_load()
    {
        Assert.Equal(10000.0, ModelConfig.Load(Path.Combine(RepositoryPaths.Fixtures, "mixtral-tiny")).Rope.Theta);
        Assert.Equal(10000.0, ModelConfig.Load(Path.Combine(RepositoryPaths.Fixtures, "qwen3moe-tiny")).Rope.Theta);
    }

    [Fact]
    public void Rope_scaling_of_the_older_style_is_read()
    {
        var config = Parse(""", "rope_theta": 10000, "rope_scaling": {"type": "yarn", "factor": 40, "mscale": 1.0} """);
        Assert.Equal("yarn", config.Rope.Type);
        Assert.Equal(40, config.Rope.Get("factor"));
    }

    [Fact]
    public void A_missing_required_field_names_the_file_and_field()
    {
        var config = ModelConfig.Parse("""{"model_type": "mixtral"}""", "x/config.json");
        var error = Assert.Throws<ModelConfigException>(() => config.HiddenSize);
        Assert.Equal("x/config.json: required field 'hidden_size' is missing (model_type 'mixtral')", error.Message);
    }

    [Fact]
    public void A_missing_model_type_is_refused()
    {
        var error = Assert.Throws<ModelConfigException>(() => ModelConfig.Parse("""{"hidden_size": 4}""", "x/config.json"));
        Assert.Contains("'model_type' is missing", error.Message);
    }

    [Fact]
    public void A_field_of_the_wrong_type_is_refused()
    {
        var config = Parse(""", "num_key_value_heads": "two" """);
        var error = Assert.Throws<ModelConfigException>(() => config.NumKeyValueHeads);
        Assert.Contains("field 'num_key_value_heads' must be a number, found \"two\"", error.Message);
    }

    [Fact]
    public void Json_that_is_not_a_config_is_refused()
    {
        Assert.Contains("not valid JSON", Assert.Throws<ModelConfigException>(() => ModelConfig.Parse("{", "c.json")).Message);
        Assert.Contains("must be a JSON object", Assert.Throws<ModelConfigException>(() => ModelConfig.Parse("[1]", "c.json")).Message);
        Assert.Contains("config.json not found", Assert.Throws<ModelConfigException>(() => ModelConfig.Load("/nonexistent")).Message);
    }

    [Fact]
    public void An_unknown_model_type_lists_the_supported_ones()
    {
        var config = ModelConfig.Parse("""{"model_type": "llama4"}""", "m/config.json");
        var error = Assert.Throws<ModelConfigException>(() => Architecture.For(config));
        Assert.Equal("m/config.json: unknown model_type 'llama4'; supported: mixtral, qwen2_moe, qwen3_moe, olmoe, deepseek_v3", error.Message);
    }

    [Fact]
    public void An_unsupported_rope_type_is_refused()
    {
        var config = Parse(""", "rope_scaling": {"rope_type": "longrope", "factor": 4} """);
        var error = Assert.Throws<ModelConfigException>(() => RopeFactory.Create(config, 16, RopeLayout.Half));
        Assert.Contains("rope type 'longrope' is not supported", error.Message);
    }

    [Theory]
    [InlineData(""", "eos_token_id": 2""", new[] { 2 })]
    [InlineData(""", "eos_token_id": [2, 7]""", new[] { 2, 7 })]
    [InlineData("", new int[0])]
    public void Eos_token_id_is_one_id_or_a_list(string extra, int[] expected)
    {
        Assert.Equal(expected, Parse(extra).EosTokenIds);
    }

    [Fact]
    public void Head_dim_defaults_to_hidden_over_heads_also_when_null()
    {
        Assert.Equal(16, Parse(""", "head_dim": null""").HeadDim);
        Assert.Equal(32, Parse(""", "head_dim": 32""").HeadDim);
    }

    [Fact]
    public void Linear_rope_divides_the_frequencies()
    {
        var config = Parse(""", "rope_scaling": {"rope_type": "linear", "factor": 4.0}""");
        var scaled = RopeFactory.Create(config, 8, RopeLayout.Half);
        var plain = RopeFactory.Create(Parse(), 8, RopeLayout.Half);
        float[] x = [1, 0, 0, 0, 0, 0, 0, 0];
        float[] y = [1, 0, 0, 0, 0, 0, 0, 0];
        scaled.Apply(x, 1, 8, 0, 8);
        plain.Apply(y, 1, 8, 0, 2);
        Assert.Equal(y[0], x[0], 5);
        Assert.Equal(y[4], x[4], 5);
    }

    [Fact]
    public void Yarn_blends_interpolated_and_extrapolated_frequencies_and_scales_attention()
    {
        // Independently computed from the YaRN definition for dim 16, base 10000, factor 8,
        // original context 64, beta_fast 32, beta_slow 1.
        const int Dim = 16;
        const double Base = 10000, Factor = 8, Original = 64;
        var config = Parse(""", "max_position_embeddings": 512, "rope_scaling": {"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 64}""");
        var rope = RopeFactory.Create(config, Dim, RopeLayout.Half);

        double CorrectionDim(double rotations) => Dim * Math.Log(Original / (rotations * 2 * Math.PI)) / (2 * Math.Log(Base));
        var low = Math.Max(Math.Floor(CorrectionDim(32)), 0);
        var high = Math.Min(Math.Ceiling(CorrectionDim(1)), Dim - 1);
        var attention = (0.1 * Math.Log(Factor)) + 1;
        var position = 5;
        var x = new float[Dim];
        for (var i = 0; i < Dim / 2; i++)
        {
            x[i] = 1;
        }

        rope.Apply(x, 1, Dim, 0, position);
        for (var i = 0; i < Dim / 2; i++)
        {
            var extrapolated = 1 / Math.Pow(Base, 2.0 * i / Dim);
            var ramp = Math.Clamp((i - low) / (high - low), 0, 1);
            var frequency = (extrapolated / Factor * ramp) + (extrapolated * (1 - ramp));
            Assert.Equal(Math.Cos(position * frequency) * attention, x[i], 4);
            Assert.Equal(Math.Sin(position * frequency) * attention, x[i + (Dim / 2)], 4);
        }
    }

    [Fact]
    public void Yarn_with_mscale_uses_the_ratio_of_mscales()
    {
        var config = Parse(""", "rope_scaling": {"rope_type": "yarn", "factor": 40.0, "mscale": 1.0, "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096}""");
        var rope = RopeFactory.Create(config, 8, RopeLayout.Half);
        float[] x = [1, 0, 0, 0, 0, 0, 0, 0];
        rope.Apply(x, 1, 8, 0, 0);
        Assert.Equal(1f, x[0], 5);
    }
}
