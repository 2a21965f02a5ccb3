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
        var experts = QwenMoeLayers.ExpertCount(config, 64);
        var topK = config.IntegerField("num_experts_per_tok") ?? 8;
        var normalize = config.FlagField("norm_topk_prob") ?? false;
        var intermediate = config.IntegerField("intermediate_size") ?? 2048;
        var rope = w.Rope(config.HeadDim, RopeLayout.Half);

        return w.Model(w.LayerIndices.Select(l =>
        {
            var p = $"model.layers.{l}.mlp";
            var moe = new SparseMoeBlock(
                w.Linear($"{p}.gate", experts, w.Hidden),
                Routing.SoftmaxTopK(normalize),
                topK,
                Enumerable.Range(0, experts).Select(e => w.Mlp($"{p}.experts.{e}", intermediate)).ToArray());
            return w.Layer(l, w.Attention(l, rope, QueryKeyNorm.WholeProjection, clip: config.SingleField("clip_qkv")), moe);
        }).ToArray());
    }
}
