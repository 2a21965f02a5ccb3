using Orleans.MoE.Models.Checkpoints;
using Orleans.MoE.Models.Configuration;
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
        var sharedSize = config.IntegerField("shared_expert_intermediate_size") ?? 5632;
        var moe = new QwenMoeLayers(w, defaultExperts: 60, defaultTopK: 4, defaultExpertSize: 1408, defaultDenseSize: 5632);
        var rope = w.Rope(config.HeadDim, RopeLayout.Half);

        return w.Model(w.LayerIndices.Select(l => w.Layer(
            l,
            w.Attention(l, rope, slidingWindow: QwenMoeLayers.SlidingWindow(config, l)),
            moe.FeedForward(l, p => (w.Mlp($"{p}.shared_expert", sharedSize), w.Linear($"{p}.shared_expert_gate", 1, w.Hidden))))).ToArray());
    }
}
