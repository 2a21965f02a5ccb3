using Orleans.MoE.Models.Architectures;
using Orleans.MoE.Models.Configuration;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Tests.Configuration;

/// <summary>config.json in both styles; every problem is a ModelConfigException naming the file and the field.</summary>
public sealed class ModelConfigTests
{
    private const string Source = "test/config.json";

    private const string Minimal = """
        {"model_type": "mixtral", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 512%EXTRA%}
        """;

    private static ModelConfig Parse(string extra = "") => ModelConfig.Parse(Minimal.Replace("%EXTRA%", extra), Source);

    [Fact]
    public void The_older_style_reads_rope_theta_and_torch_dtype_at_top_level()
    {
        var config = Parse(""", "rope_theta": 500000.0, "torch_dtype": "bfloat16", "rope_scaling": null""");
        Assert.Equal(500000.0, config.Rope.Theta);
        Assert.Equal("default", config.Rope.Type);
        Assert.Empty(config.Rope.Values);
        Assert.Equal("bfloat16", config.DType);
    }

    [Fact]
    public void The_newer_style_reads_rope_parameters_and_dtype()
    {
        var config = Parse(""", "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"}, "dtype": "float32" """);
        Assert.Equal(1000000.0, config.Rope.Theta);
        Assert.Equal("default", config.Rope.Type);
        Assert.Equal("float32", config.DType);
    }

    [Fact]
    public void The_newer_style_wins_where_both_are_given()
    {
        var config = Parse("""
            , "rope_theta": 10000.0, "torch_dtype": "float16", "rope_scaling": {"type": "linear", "factor": 2},
            "rope_parameters": {"rope_theta": 75000.0, "rope_type": "yarn", "factor": 4.0}, "dtype": "bfloat16"
            """);
        Assert.Equal(75000.0, config.Rope.Theta);
        Assert.Equal("yarn", config.Rope.Type);
        Assert.Equal(4.0, config.Rope.Get("factor"));
        Assert.Equal("bfloat16", config.DType);
    }

    [Fact]
    public void Without_rope_fields_theta_defaults_to_ten_thousand()
    {
        var config = Parse();
        Assert.Equal(10000.0, config.Rope.Theta);
        Assert.Equal("default", config.Rope.Type);
        Assert.Null(config.DType);
    }

    [Theory]
    [InlineData("mixtral-tiny", "mixtral", "float32")]
    [InlineData("mixtral-tiny-bf16", "mixtral", "bfloat16")]
    [InlineData("qwen2moe-tiny", "qwen2_moe", "float32")]
    [InlineData("qwen3moe-tiny", "qwen3_moe", "float32")]
    [InlineData("olmoe-tiny", "olmoe", "float32")]
    [InlineData("deepseekv3-tiny", "deepseek_v3", "float32")]
    public void Every_fixture_config_loads_and_has_an_architecture(string fixture, string modelType, string dtype)
    {
        var directory = Path.Combine(RepositoryPaths.Fixtures, fixture);
        var config = ModelConfig.Load(directory);
        Assert.Equal(Path.Combine(directory, "config.json"), config.Source);
        Assert.Equal(modelType, config.ModelType);
        Assert.Equal(modelType, Architecture.For(config).ModelType);
        Assert.Equal(10000.0, config.Rope.Theta);
        Assert.Equal("default", config.Rope.Type);
        Assert.Equal(dtype, config.DType);
        Assert.Equal([2], config.EosTokenIds);
        Assert.Equal(64, config.HiddenSize);
    }

    [Fact]
    public void The_older_style_rope_scaling_is_read_with_type_or_rope_type()
    {
        var config = Parse(""", "rope_theta": 10000, "rope_scaling": {"type": "yarn", "factor": 40, "mscale": 1.0, "original_max_position_embeddings": 4096}""");
        Assert.Equal("yarn", config.Rope.Type);
        Assert.Equal(10000.0, config.Rope.Theta);
        Assert.Equal(40, config.Rope.Get("factor"));
        Assert.Equal(4096, config.Rope.Get("original_max_position_embeddings"));
        Assert.Null(config.Rope.Get("beta_fast"));
        Assert.Equal("linear", Parse(""", "rope_scaling": {"rope_type": "linear", "factor": 2}""").Rope.Type);
    }

    [Theory]
    [InlineData("hidden_size")]
    [InlineData("num_hidden_layers")]
    [InlineData("num_attention_heads")]
    [InlineData("vocab_size")]
    public void A_missing_required_field_names_the_file_and_field(string field)
    {
        var json = Minimal.Replace("%EXTRA%", "").Replace($"\"{field}\":", $"\"x_{field}\":");
        var config = ModelConfig.Parse(json, "x/config.json");
        var error = Assert.Throws<ModelConfigException>(() => field switch
        {
            "hidden_size" => config.HiddenSize,
            "num_hidden_layers" => config.NumLayers,
            "num_attention_heads" => config.NumAttentionHeads,
            _ => config.VocabSize,
        });
        Assert.Equal($"x/config.json: required field '{field}' is missing (model_type 'mixtral')", error.Message);
    }

    [Fact]
    public void A_required_field_that_is_null_is_missing()
    {
        var config = ModelConfig.Parse("""{"model_type": "olmoe", "hidden_size": null}""", "x/config.json");
        var error = Assert.Throws<ModelConfigException>(() => config.HiddenSize);
        Assert.Equal("x/config.json: required field 'hidden_size' is missing (model_type 'olmoe')", error.Message);
    }

    [Fact]
    public void A_missing_model_type_is_refused_on_parse()
    {
        var error = Assert.Throws<ModelConfigException>(() => ModelConfig.Parse("""{"hidden_size": 4}""", "x/config.json"));
        Assert.Equal("x/config.json: required field 'model_type' is missing (model_type '?')", error.Message);
    }

    [Theory]
    [InlineData("hidden_size", "\"64\"", "a number")]
    [InlineData("hidden_size", "64.5", "an integer")]
    [InlineData("hidden_size", "[64]", "a number")]
    [InlineData("num_key_value_heads", "\"two\"", "a number")]
    [InlineData("rms_norm_eps", "\"1e-6\"", "a number")]
    [InlineData("tie_word_embeddings", "\"yes\"", "true or false")]
    [InlineData("tie_word_embeddings", "1", "true or false")]
    [InlineData("eos_token_id", "\"2\"", "an integer or a list of integers")]
    [InlineData("eos_token_id", "[2, \"3\"]", "a list of integers")]
    [InlineData("torch_dtype", "16", "a string")]
    public void A_field_of_the_wrong_type_names_the_field_and_the_value(string field, string value, string expected)
    {
        var json = $$"""{"model_type": "mixtral", "{{field}}": {{value}}}""";
        var config = ModelConfig.Parse(json, Source);
        var error = Assert.Throws<ModelConfigException>(() => field switch
        {
            "hidden_size" => config.HiddenSize,
            "num_key_value_heads" => config.NumKeyValueHeads,
            "rms_norm_eps" => config.RmsNormEps,
            "tie_word_embeddings" => config.TieWordEmbeddings,
            "eos_token_id" => config.EosTokenIds,
            _ => (object?)config.DType,
        });
        Assert.Equal($"{Source}: field '{field}' must be {expected}, found {value}", error.Message);
    }

    [Fact]
    public void A_model_type_that_is_not_a_string_is_refused()
    {
        var error = Assert.Throws<ModelConfigException>(() => ModelConfig.Parse("""{"model_type": 3}""", Source));
        Assert.Equal($"{Source}: field 'model_type' must be a string, found 3", error.Message);
    }

    [Theory]
    [InlineData("{", "not valid JSON")]
    [InlineData("", "not valid JSON")]
    [InlineData("model_type: mixtral", "not valid JSON")]
    [InlineData("{\"model_type\": \"mixtral\",}", "not valid JSON")]
    [InlineData("[1]", "config must be a JSON object")]
    [InlineData("null", "config must be a JSON object")]
    public void Text_that_is_not_a_config_object_is_refused(string json, string phrase)
    {
        var error = Assert.Throws<ModelConfigException>(() => ModelConfig.Parse(json, "c/config.json"));
        Assert.StartsWith("c/config.json: ", error.Message);
        Assert.Contains(phrase, error.Message);
    }

    [Fact]
    public void Loading_a_broken_or_absent_config_names_the_path()
    {
        var directory = Directory.CreateTempSubdirectory("moe-config-").FullName;
        try
        {
            var path = Path.Combine(directory, "config.json");
            var error = Assert.Throws<ModelConfigException>(() => ModelConfig.Load(directory));
            Assert.Equal($"{path}: config.json not found", error.Message);

            File.WriteAllText(path, "{\"model_type\": ");
            error = Assert.Throws<ModelConfigException>(() => ModelConfig.Load(directory));
            Assert.StartsWith($"{path}: not valid JSON", error.Message);

            error = Assert.Throws<ModelConfigException>(() => ModelLoader.Load(directory));
            Assert.StartsWith($"{path}: not valid JSON", error.Message);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void An_unknown_model_type_lists_the_supported_ones()
    {
        var config = ModelConfig.Parse("""{"model_type": "llama4"}""", "m/config.json");
        var error = Assert.Throws<ModelConfigException>(() => Architecture.For(config));
        Assert.Equal("m/config.json: unknown model_type 'llama4'; supported: mixtral, qwen2_moe, qwen3_moe, olmoe, deepseek_v3", error.Message);
        Assert.Equal(["mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v3"], Architecture.Supported);
    }

    [Fact]
    public void Model_types_are_matched_exactly()
    {
        var error = Assert.Throws<ModelConfigException>(() => Architecture.For(ModelConfig.Parse("""{"model_type": "Mixtral"}""", Source)));
        Assert.Contains("unknown model_type 'Mixtral'", error.Message);
    }

    [Theory]
    [InlineData("longrope")]
    [InlineData("dynamic")]
    [InlineData("llama3")]
    public void An_unsupported_rope_type_is_refused(string type)
    {
        var config = Parse($$""", "rope_scaling": {"rope_type": "{{type}}", "factor": 4}""");
        var error = Assert.Throws<ModelConfigException>(() => RopeFactory.Create(config, 16, RopeLayout.Half));
        Assert.Equal($"{Source}: rope type '{type}' is not supported (supported: default, linear, yarn)", error.Message);
    }

    [Fact]
    public void Linear_rope_without_a_factor_is_refused()
    {
        var config = Parse(""", "rope_parameters": {"rope_type": "linear", "rope_theta": 10000.0}""");
        var error = Assert.Throws<ModelConfigException>(() => RopeFactory.Create(config, 16, RopeLayout.Half));
        Assert.Equal($"{Source}: rope type 'linear' needs a 'factor'", error.Message);
    }

    [Theory]
    [InlineData(""", "eos_token_id": 2""", new[] { 2 })]
    [InlineData(""", "eos_token_id": [2, 7]""", new[] { 2, 7 })]
    [InlineData(""", "eos_token_id": []""", new int[0])]
    [InlineData(""", "eos_token_id": null""", new int[0])]
    [InlineData("", new int[0])]
    public void Eos_token_id_is_one_id_or_a_list(string extra, int[] expected)
    {
        Assert.Equal(expected, Parse(extra).EosTokenIds);
    }

    [Fact]
    public void Head_dim_defaults_to_hidden_over_heads_also_when_null()
    {
        Assert.Equal(16, Parse(""", "head_dim": null""").HeadDim);
        Assert.Equal(16, Parse().HeadDim);
        Assert.Equal(32, Parse(""", "head_dim": 32""").HeadDim);
    }

    [Fact]
    public void Optional_fields_take_the_reference_defaults()
    {
        var config = Parse();
        Assert.Equal(4, config.NumKeyValueHeads);
        Assert.Equal(1e-6f, config.RmsNormEps);
        Assert.False(config.TieWordEmbeddings);
        Assert.Equal(4096, config.MaxPositionEmbeddings);

        config = Parse(""", "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "tie_word_embeddings": true, "max_position_embeddings": 512""");
        Assert.Equal(2, config.NumKeyValueHeads);
        Assert.Equal(1e-5f, config.RmsNormEps);
        Assert.True(config.TieWordEmbeddings);
        Assert.Equal(512, config.MaxPositionEmbeddings);
    }
}
