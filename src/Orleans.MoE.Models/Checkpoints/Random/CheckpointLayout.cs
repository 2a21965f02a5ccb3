using Orleans.MoE.Models.Architectures;
using Orleans.MoE.Models.Configuration;
using Orleans.MoE.Tensors;

namespace Orleans.MoE.Models.Checkpoints.Random;

/// <summary>One tensor of a checkpoint: its name, shape and stored dtype.</summary>
public sealed record TensorSpec(string Name, long[] Shape, DType DType)
{
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);

    public long ByteLength => Elements * DType.Size();
}

/// <summary>
/// The tensors a Hugging Face checkpoint of a config holds, named and shaped as transformers saves them
/// (per-expert <c>experts.{e}</c> projections, as the published checkpoints), and as the architectures
/// here read them: weights in the given dtype, DeepSeek-V3's e_score_correction_bias in f32.
/// </summary>
public static class CheckpointLayout
{
    public static IReadOnlyList<TensorSpec> For(ModelConfig config, DType dtype = DType.BF16)
    {
        ArgumentNullException.ThrowIfNull(config);
        var (hidden, vocab) = ((long)config.HiddenSize, (long)config.VocabSize);
        var tensors = new List<TensorSpec>();
        void Add(string name, DType type, params long[] shape) => tensors.Add(new TensorSpec(name, shape, type));
        void Matrix(string name, long rows, long cols) => Add(name + ".weight", dtype, rows, cols);
        void Vector(string name, long length) => Add(name, dtype, length);
        void Mlp(string prefix, long size, string gate = "gate_proj", string up = "up_proj", string down = "down_proj")
        {
            Matrix($"{prefix}.{gate}", size, hidden);
            Matrix($"{prefix}.{up}", size, hidden);
            Matrix($"{prefix}.{down}", hidden, size);
        }

        Matrix("model.embed_tokens", vocab, hidden);
        for (var l = 0; l < config.NumLayers; l++)
        {
            var p = $"model.layers.{l}";
            Vector($"{p}.input_layernorm.weight", hidden);
            Vector($"{p}.post_attention_layernorm.weight", hidden);
            switch (config.ModelType)
            {
                case "mixtral":
                    Attention(config, p, Matrix, Vector, biases: false, norm: QueryKeyNormWidth.None);
                    Matrix($"{p}.block_sparse_moe.gate", config.IntegerField("num_local_experts") ?? 8, hidden);
                    for (var e = 0; e < (config.IntegerField("num_local_experts") ?? 8); e++)
                    {
                        Mlp($"{p}.block_sparse_moe.experts.{e}", config.IntegerField("intermediate_size") ?? 14336, "w1", "w3", "w2");
                    }

                    break;
                case "olmoe":
                    Attention(config, p, Matrix, Vector, config.FlagField("attention_bias") ?? false, QueryKeyNormWidth.WholeProjection);
                    SparseMlp(config, l, p, Matrix, Mlp, QwenMoeLayers.ExpertCount(config, 64), config.IntegerField("intermediate_size") ?? 2048, dense: 0, shared: null);
                    break;
                case "qwen2_moe":
                    Attention(config, p, Matrix, Vector, config.FlagField("qkv_bias") ?? true, QueryKeyNormWidth.None, outputBias: false);
                    SparseMlp(config, l, p, Matrix, Mlp, QwenMoeLayers.ExpertCount(config, 60), config.IntegerField("moe_intermediate_size") ?? 1408,
                        config.IntegerField("intermediate_size") ?? 5632, config.IntegerField("shared_expert_intermediate_size") ?? 5632);
                    break;
                case "qwen3_moe":
                    Attention(config, p, Matrix, Vector, config.FlagField("attention_bias") ?? false, QueryKeyNormWidth.PerHead);
                    SparseMlp(config, l, p, Matrix, Mlp, QwenMoeLayers.ExpertCount(config, 128), config.IntegerField("moe_intermediate_size") ?? 768,
                        config.IntegerField("intermediate_size") ?? 6144, shared: null);
                    break;
                case "deepseek_v3":
                    DeepseekLayer(config, l, p, Matrix, Vector, Mlp, Add);
                    break;
                default:
                    throw new ModelConfigException($"{config.Source}: no checkpoint layout for model_type '{config.ModelType}' (mixtral, qwen2_moe, qwen3_moe, olmoe, deepseek_v3)");
            }
        }

        Vector("model.norm.weight", hidden);
        if (!config.TieWordEmbeddings)
        {
            Matrix("lm_head", vocab, hidden);
        }

        return tensors;
    }

    private enum QueryKeyNormWidth
    {
        None,
        PerHead,
        WholeProjection,
    }

    private static void Attention(ModelConfig config, string p, Action<string, long, long> matrix, Action<string, long> vector, bool biases, QueryKeyNormWidth norm, bool outputBias = true)
    {
        var (hidden, heads, kvHeads, headDim) = (config.HiddenSize, config.NumAttentionHeads, config.NumKeyValueHeads, config.HeadDim);
        var a = $"{p}.self_attn";
        foreach (var (name, rows, cols) in new[] { ("q_proj", heads * headDim, hidden), ("k_proj", kvHeads * headDim, hidden), ("v_proj", kvHeads * headDim, hidden), ("o_proj", hidden, heads * headDim) })
        {
            matrix($"{a}.{name}", rows, cols);
            if (biases && (outputBias || name != "o_proj"))
            {
                vector($"{a}.{name}.bias", rows);
            }
        }

        if (norm != QueryKeyNormWidth.None)
        {
            vector($"{a}.q_norm.weight", norm == QueryKeyNormWidth.PerHead ? headDim : heads * headDim);
            vector($"{a}.k_norm.weight", norm == QueryKeyNormWidth.PerHead ? headDim : kvHeads * headDim);
        }
    }

    /// <summary>A Qwen/OLMoE feed-forward under <c>mlp</c>: sparse (router, experts, optional gated shared expert) or, per the Qwen sparse-layer rules, dense.</summary>
    private static void SparseMlp(ModelConfig config, int layer, string p, Action<string, long, long> matrix, Action<string, long, string, string, string> mlp, int experts, long expertSize, long dense, long? shared)
    {
        var m = $"{p}.mlp";
        if (config.ModelType != "olmoe" && !QwenMoeLayers.IsSparse(config, layer, experts))
        {
            mlp(m, dense, "gate_proj", "up_proj", "down_proj");
            return;
        }

        matrix($"{m}.gate", experts, config.HiddenSize);
        for (var e = 0; e < experts; e++)
        {
            mlp($"{m}.experts.{e}", expertSize, "gate_proj", "up_proj", "down_proj");
        }

        if (shared is { } size)
        {
            mlp($"{m}.shared_expert", size, "gate_proj", "up_proj", "down_proj");
            matrix($"{m}.shared_expert_gate", 1, config.HiddenSize);
        }
    }

    private static void DeepseekLayer(ModelConfig config, int layer, string p, Action<string, long, long> matrix, Action<string, long> vector, Action<string, long, string, string, string> mlp, Action<string, DType, long[]> add)
    {
        if (config.FlagField("attention_bias") ?? false)
        {
            throw config.Invalid("attention_bias", "must be false for a deepseek_v3 checkpoint written here");
        }

        var hidden = config.HiddenSize;
        var heads = config.NumAttentionHeads;
        var qLoraRank = config.IsPresent("q_lora_rank") ? config.IntegerField("q_lora_rank") : 1536;
        var kvLoraRank = config.IntegerField("kv_lora_rank") ?? 512;
        var nopeDim = config.IntegerField("qk_nope_head_dim") ?? 128;
        var ropeDim = config.IntegerField("qk_rope_head_dim") ?? 64;
        var valueDim = config.IntegerField("v_head_dim") ?? 128;
        var a = $"{p}.self_attn";
        if (qLoraRank is { } rank)
        {
            matrix($"{a}.q_a_proj", rank, hidden);
            vector($"{a}.q_a_layernorm.weight", rank);
            matrix($"{a}.q_b_proj", heads * (nopeDim + ropeDim), rank);
        }
        else
        {
            matrix($"{a}.q_proj", heads * (nopeDim + ropeDim), hidden);
        }

        matrix($"{a}.kv_a_proj_with_mqa", kvLoraRank + ropeDim, hidden);
        vector($"{a}.kv_a_layernorm.weight", kvLoraRank);
        matrix($"{a}.kv_b_proj", heads * (nopeDim + valueDim), kvLoraRank);
        matrix($"{a}.o_proj", hidden, heads * valueDim);

        var m = $"{p}.mlp";
        var expertSize = config.IntegerField("moe_intermediate_size") ?? 2048;
        if (layer < (config.IntegerField("first_k_dense_replace") ?? 3))
        {
            mlp(m, config.IntegerField("intermediate_size") ?? 18432, "gate_proj", "up_proj", "down_proj");
            return;
        }

        var experts = config.IntegerField("n_routed_experts") ?? 256;
        matrix($"{m}.gate", experts, hidden);
        add($"{m}.gate.e_score_correction_bias", DType.F32, [experts]);
        for (var e = 0; e < experts; e++)
        {
            mlp($"{m}.experts.{e}", expertSize, "gate_proj", "up_proj", "down_proj");
        }

        if ((config.IntegerField("n_shared_experts") ?? 1) is var shared and > 0)
        {
            mlp($"{m}.shared_experts", expertSize * shared, "gate_proj", "up_proj", "down_proj");
        }
    }
}
