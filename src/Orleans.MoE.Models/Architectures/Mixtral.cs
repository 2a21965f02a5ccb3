using Orleans.MoE.Models.Checkpoints;
using Orleans.MoE.Models.Configuration;
using Orleans.MoE.Models.Layers;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Architectures;

/// <summary>
/// Mixtral: grouped-query attention with RoPE (optional sliding window); every layer a sparse MoE
/// block of num_local_experts SwiGLU experts (w1 gate, w3 up, w2 down) routed by softmax, top-k,
/// renormalised.
/// </summary>
internal sealed class Mixtral : IArchitecture
{
    public string ModelType => "mixtral";

    public CausalLanguageModel Build(ModelConfig config, Checkpoint checkpoint)
    {
        var w = new WeightLoader(config, checkpoint);
        var heads = config.NumAttentionHeads;
        var kvHeads = config.NumKeyValueHeads;
        var headDim = config.HeadDim;
        var experts = config.IntegerField("num_local_experts") ?? 8;
        var topK = config.IntegerField("num_experts_per_tok") ?? 2;
        var intermediate = config.IntegerField("intermediate_size") ?? 14336;
        var rope = w.Rope(headDim, RopeLayout.Half);

        var layers = w.LayerIndices.Select(l =>
        {
            var p = $"model.layers.{l}";
            var attention = new GroupedQueryAttention(
                w.Linear($"{p}.self_attn.q_proj", heads * headDim, w.Hidden),
                w.Linear($"{p}.self_attn.k_proj", kvHeads * headDim, w.Hidden),
                w.Linear($"{p}.self_attn.v_proj", kvHeads * headDim, w.Hidden),
                w.Linear($"{p}.self_attn.o_proj", w.Hidden, heads * headDim),
                heads, kvHeads, headDim, rope, slidingWindow: config.IntegerField("sliding_window"));
            var moe = new SparseMoeBlock(
                w.Linear($"{p}.block_sparse_moe.gate", experts, w.Hidden),
                Routing.SoftmaxTopK(normalize: true),
                topK,
                Enumerable.Range(0, experts).Select(e => w.Mlp($"{p}.block_sparse_moe.experts.{e}", intermediate, "w1", "w3", "w2")).ToArray());
            return new DecoderLayer(w.Norm($"{p}.input_layernorm", w.Hidden), attention, w.Norm($"{p}.post_attention_layernorm", w.Hidden), moe);
        }).ToArray();

        return w.Model(layers);
    }
}
