using Orleans.MoE.Models.Checkpoints;
using Orleans.MoE.Models.Configuration;
using Orleans.MoE.Models.Layers;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Architectures;

/// <summary>
/// Qwen3-MoE: grouped-query attention with an explicit head_dim and RMSNorm of each query and key head
/// (q_norm, k_norm) before RoPE; sparse layers (per decoder_sparse_step and mlp_only_layers) route by
/// softmax, top-k, renormalised when norm_topk_prob; no shared expert.
/// </summary>
internal sealed class Qwen3Moe : IArchitecture
{
    public string ModelType => "qwen3_moe";

    public CausalLanguageModel Build(ModelConfig config, Checkpoint checkpoint)
    {
        var w = new WeightLoader(config, checkpoint);
        var heads = config.NumAttentionHeads;
        var kvHeads = config.NumKeyValueHeads;
        var headDim = config.HeadDim;
        var experts = QwenMoeLayers.ExpertCount(config, 128);
        var topK = config.IntegerField("num_experts_per_tok") ?? 8;
        var normalize = config.FlagField("norm_topk_prob") ?? false;
        var expertSize = config.IntegerField("moe_intermediate_size") ?? 768;
        var denseSize = config.IntegerField("intermediate_size") ?? 6144;
        var rope = w.Rope(headDim, RopeLayout.Half);

        var layers = w.LayerIndices.Select(l =>
        {
            var p = $"model.layers.{l}";
            var attention = new GroupedQueryAttention(
                w.Linear($"{p}.self_attn.q_proj", heads * headDim, w.Hidden),
                w.Linear($"{p}.self_attn.k_proj", kvHeads * headDim, w.Hidden),
                w.Linear($"{p}.self_attn.v_proj", kvHeads * headDim, w.Hidden),
                w.Linear($"{p}.self_attn.o_proj", w.Hidden, heads * headDim),
                heads, kvHeads, headDim, rope,
                QueryKeyNorm.PerHead, w.Norm($"{p}.self_attn.q_norm", headDim), w.Norm($"{p}.self_attn.k_norm", headDim),
                slidingWindow: QwenMoeLayers.SlidingWindow(config, l));
            IFeedForward feedForward = QwenMoeLayers.IsSparse(config, l, experts)
                ? new SparseMoeBlock(
                    w.Linear($"{p}.mlp.gate", experts, w.Hidden),
                    Routing.SoftmaxTopK(normalize),
                    topK,
                    Enumerable.Range(0, experts).Select(e => w.Mlp($"{p}.mlp.experts.{e}", expertSize)).ToArray())
                : w.Mlp($"{p}.mlp", denseSize);
            return new DecoderLayer(w.Norm($"{p}.input_layernorm", w.Hidden), attention, w.Norm($"{p}.post_attention_layernorm", w.Hidden), feedForward);
        }).ToArray();

        return w.Model(layers);
    }
}
