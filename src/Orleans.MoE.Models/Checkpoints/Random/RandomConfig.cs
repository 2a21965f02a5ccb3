using System.Text.Json.Nodes;
using Orleans.MoE.Models.Configuration;

namespace Orleans.MoE.Models.Checkpoints.Random;

/// <summary>
/// The config.json of a random checkpoint: an architecture's template (by default the 583M-parameter
/// Mixtral shape the CPU benchmarks use: hidden 1024, expert FFN 2816, 8 layers, 8 experts, top-2,
/// 16 heads of 64 with 4 key/value heads, the demo tokenizer's 4096 tokens, bf16), or a given
/// config.json, with fields overridden by name.
/// </summary>
public static class RandomConfig
{
    public static IReadOnlyList<string> Architectures { get; } = ["mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v3"];

    /// <summary>The template of <paramref name="modelType"/>, with the fields every architecture shares.</summary>
    public static JsonObject Template(string modelType)
    {
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray(modelType switch
            {
                "mixtral" => "MixtralForCausalLM",
                "qwen2_moe" => "Qwen2MoeForCausalLM",
                "qwen3_moe" => "Qwen3MoeForCausalLM",
                "olmoe" => "OlmoeForCausalLM",
                "deepseek_v3" => "DeepseekV3ForCausalLM",
                _ => throw new ModelConfigException($"no random checkpoint template for model_type '{modelType}' ({string.Join(", ", Architectures)})"),
            }),
            ["model_type"] = modelType,
            ["hidden_size"] = 1024,
            ["num_hidden_layers"] = 8,
            ["num_attention_heads"] = 16,
            ["num_key_value_heads"] = 4,
            ["vocab_size"] = 4096,
            ["max_position_embeddings"] = 4096,
            ["hidden_act"] = "silu",
            ["rms_norm_eps"] = 1e-5,
            ["rope_theta"] = 10000.0,
            ["initializer_range"] = 0.02,
            ["tie_word_embeddings"] = false,
            ["bos_token_id"] = 1,
            ["eos_token_id"] = 2,
            ["pad_token_id"] = 3,
            ["use_cache"] = true,
            ["torch_dtype"] = "bfloat16",
        };
        var specific = modelType switch
        {
            "mixtral" => new JsonObject { ["num_local_experts"] = 8, ["num_experts_per_tok"] = 2, ["intermediate_size"] = 2816, ["sliding_window"] = null },
            "qwen2_moe" => new JsonObject
            {
                ["num_experts"] = 8, ["num_experts_per_tok"] = 2, ["moe_intermediate_size"] = 2816, ["shared_expert_intermediate_size"] = 2816,
                ["intermediate_size"] = 5632, ["norm_topk_prob"] = false, ["qkv_bias"] = true, ["decoder_sparse_step"] = 1, ["mlp_only_layers"] = new JsonArray(),
                ["use_sliding_window"] = false,
            },
            "qwen3_moe" => new JsonObject
            {
                ["num_experts"] = 8, ["num_experts_per_tok"] = 2, ["moe_intermediate_size"] = 2816, ["intermediate_size"] = 5632, ["head_dim"] = 64,
                ["norm_topk_prob"] = true, ["attention_bias"] = false, ["decoder_sparse_step"] = 1, ["mlp_only_layers"] = new JsonArray(), ["use_sliding_window"] = false,
            },
            "olmoe" => new JsonObject { ["num_experts"] = 8, ["num_experts_per_tok"] = 2, ["intermediate_size"] = 2816, ["norm_topk_prob"] = false, ["clip_qkv"] = null, ["attention_bias"] = false },
            _ => new JsonObject
            {
                ["n_routed_experts"] = 8, ["num_experts_per_tok"] = 2, ["moe_intermediate_size"] = 2816, ["intermediate_size"] = 5632, ["n_shared_experts"] = 1,
                ["n_group"] = 1, ["topk_group"] = 1, ["first_k_dense_replace"] = 1, ["q_lora_rank"] = 512, ["kv_lora_rank"] = 256, ["qk_nope_head_dim"] = 64,
                ["qk_rope_head_dim"] = 32, ["v_head_dim"] = 64, ["head_dim"] = 32, ["num_key_value_heads"] = 16, ["routed_scaling_factor"] = 2.5,
                ["scoring_func"] = "sigmoid", ["topk_method"] = "noaux_tc", ["norm_topk_prob"] = true, ["rope_interleave"] = true, ["attention_bias"] = false,
            },
        };
        foreach (var (name, value) in specific)
        {
            config[name] = value?.DeepClone();
        }

        return config;
    }

    /// <summary>The config field that holds <paramref name="modelType"/>'s routed expert count.</summary>
    public static string ExpertCountField(string modelType) => modelType switch
    {
        "mixtral" => "num_local_experts",
        "deepseek_v3" => "n_routed_experts",
        _ => "num_experts",
    };

    /// <summary>The config field that holds <paramref name="modelType"/>'s routed expert FFN width.</summary>
    public static string ExpertSizeField(string modelType) => modelType is "mixtral" or "olmoe" ? "intermediate_size" : "moe_intermediate_size";

    /// <summary>A config's model_type; a clear error when it has none.</summary>
    public static string ModelType(JsonObject config) =>
        config["model_type"]?.GetValue<string>() ?? throw new ModelConfigException("config has no model_type");

    /// <summary>
    /// Sets <paramref name="assignment"/> ("name=value", the value JSON or else a string) in <paramref name="config"/>.
    /// </summary>
    public static void Set(JsonObject config, string assignment)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(assignment);
        var equals = assignment.IndexOf('=', StringComparison.Ordinal);
        if (equals <= 0)
        {
            throw new ArgumentException($"'{assignment}' is not name=value", nameof(assignment));
        }

        var text = assignment[(equals + 1)..];
        JsonNode? value;
        try
        {
            value = JsonNode.Parse(text);
        }
        catch (System.Text.Json.JsonException)
        {
            value = JsonValue.Create(text);
        }

        config[assignment[..equals]] = value;
    }
}
