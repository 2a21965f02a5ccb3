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
        var moe = new QwenMoeLayers(w, defaultExperts: 128, defaultTopK: 8, defaultExpertSize: 768, defaultDenseSize: 6144);
        var rope = w.Rope(config.HeadDim, RopeLayout.Half);

        return w.Model(w.LayerIndices.Select(l => w.Layer(
            l,
            w.Attention(l, rope, QueryKeyNorm.PerHead, slidingWindow: QwenMoeLayers.SlidingWindow(config, l)),
            moe.FeedForward(l, sharedExpert: null))).ToArray());
    }
}
