using Orleans.MoE.Models.Checkpoints;
using Orleans.MoE.Models.Configuration;
using Orleans.MoE.Models.Layers;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Architectures;

/// <summary>
/// OLMoE: grouped-query attention with RMSNorm over the whole query and key projections (q_norm of
/// width heads·head_dim, k_norm of kv_heads·head_dim), optional clip_qkv, RoPE; every layer a sparse MoE
/// block routed by softmax, top-k, renormalised when norm_topk_prob.
/// </summary>
internal sealed class Olmoe : IArchitecture
{
    public string ModelType => "olmoe";

    public CausalLanguageModel Build(ModelConfig config, Checkpoint checkpoint)
    {
        var w = new WeightLoader(config, checkpoint);
        var heads = config.NumAttentionHeads;
        var kvHeads = config.NumKeyValueHeads;
        var headDim = config.HeadDim;
        var experts = QwenMoeLayers.ExpertCount(config, 64);
        var topK = config.IntegerField("num_experts_per_tok") ?? 8;
        var normalize = config.FlagField("norm_topk_prob") ?? false;
        var intermediate = config.IntegerField("intermediate_size") ?? 2048;
        var clip = config.SingleField("clip_qkv");
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
                QueryKeyNorm.WholeProjection, w.Norm($"{p}.self_attn.q_norm", heads * headDim), w.Norm($"{p}.self_attn.k_norm", kvHeads * headDim),
                clip);
            var moe = new SparseMoeBlock(
                w.Linear($"{p}.mlp.gate", experts, w.Hidden),
                Routing.SoftmaxTopK(normalize),
                topK,
                Enumerable.Range(0, experts).Select(e => w.Mlp($"{p}.mlp.experts.{e}", intermediate)).ToArray());
            return new DecoderLayer(w.Norm($"{p}.input_layernorm", w.Hidden), attention, w.Norm($"{p}.post_attention_layernorm", w.Hidden), moe);
        }).ToArray();

        return w.Model(layers);
    }
}
