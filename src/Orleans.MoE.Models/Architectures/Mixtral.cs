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
        var experts = config.IntegerField("num_local_experts") ?? 8;
        var topK = config.IntegerField("num_experts_per_tok") ?? 2;
        var intermediate = config.IntegerField("intermediate_size") ?? 14336;
        var rope = w.Rope(config.HeadDim, RopeLayout.Half);

        return w.Model(w.LayerIndices.Select(l =>
        {
            var p = $"model.layers.{l}.block_sparse_moe";
            var moe = new SparseMoeBlock(
                w.Linear($"{p}.gate", experts, w.Hidden),
                Routing.SoftmaxTopK(normalize: true),
                topK,
                Enumerable.Range(0, experts).Select(e => w.Mlp($"{p}.experts.{e}", intermediate, "w1", "w3", "w2")).ToArray());
            return w.Layer(l, w.Attention(l, rope, slidingWindow: config.IntegerField("sliding_window")), moe);
        }).ToArray());
    }
}
