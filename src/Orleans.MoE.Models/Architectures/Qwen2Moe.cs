using Orleans.MoE.Models.Checkpoints;
using Orleans.MoE.Models.Configuration;
using Orleans.MoE.Models.Layers;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Architectures;

/// <summary>
/// Qwen2-MoE: grouped-query attention with q/k/v biases and RoPE; sparse layers (per decoder_sparse_step
/// and mlp_only_layers) route by softmax, top-k, renormalised only when norm_topk_prob, and add a shared
/// expert scaled by sigmoid(shared_expert_gate(x)); other layers are dense MLPs.
/// </summary>
internal sealed class Qwen2Moe : IArchitecture
{
    public string ModelType => "qwen2_moe";

    public CausalLanguageModel Build(ModelConfig config, Checkpoint checkpoint)
    {
        var w = new WeightLoader(config, checkpoint);
        var heads = config.NumAttentionHeads;
        var kvHeads = config.NumKeyValueHeads;
        var headDim = config.HeadDim;
        var experts = QwenMoeLayers.ExpertCount(config, 60);
        var topK = config.IntegerField("num_experts_per_tok") ?? 4;
        var normalize = config.FlagField("norm_topk_prob") ?? false;
        var expertSize = config.IntegerField("moe_intermediate_size") ?? 1408;
        var sharedSize = config.IntegerField("shared_expert_intermediate_size") ?? 5632;
        var denseSize = config.IntegerField("intermediate_size") ?? 5632;
        var rope = w.Rope(headDim, RopeLayout.Half);

        var layers = w.LayerIndices.Select(l =>
        {
            var p = $"model.layers.{l}";
            var attention = new GroupedQueryAttention(
                w.Linear($"{p}.self_attn.q_proj", heads * headDim, w.Hidden),
                w.Linear($"{p}.self_attn.k_proj", kvHeads * headDim, w.Hidden),
                w.Linear($"{p}.self_attn.v_proj", kvHeads * headDim, w.Hidden),
                w.Linear($"{p}.self_attn.o_proj", w.Hidden, heads * headDim),
                heads, kvHeads, headDim, rope, slidingWindow: QwenMoeLayers.SlidingWindow(config, l));
            IFeedForward feedForward = QwenMoeLayers.IsSparse(config, l, experts)
                ? new SparseMoeBlock(
                    w.Linear($"{p}.mlp.gate", experts, w.Hidden),
                    Routing.SoftmaxTopK(normalize),
                    topK,
                    Enumerable.Range(0, experts).Select(e => w.Mlp($"{p}.mlp.experts.{e}", expertSize)).ToArray(),
                    sharedExpert: w.Mlp($"{p}.mlp.shared_expert", sharedSize),
                    sharedExpertGate: w.Linear($"{p}.mlp.shared_expert_gate", 1, w.Hidden))
                : w.Mlp($"{p}.mlp", denseSize);
            return new DecoderLayer(w.Norm($"{p}.input_layernorm", w.Hidden), attention, w.Norm($"{p}.post_attention_layernorm", w.Hidden), feedForward);
        }).ToArray();

        return w.Model(layers);
    }
}
