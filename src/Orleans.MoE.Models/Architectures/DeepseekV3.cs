using Orleans.MoE.Models.Checkpoints;
using Orleans.MoE.Models.Configuration;
using Orleans.MoE.Models.Layers;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Architectures;

/// <summary>
/// DeepSeek-V3: multi-head latent attention (low-rank queries unless q_lora_rank is null, a shared
/// latent for keys and values, RoPE on qk_rope_head_dim dims, interleaved when rope_interleave); the
/// first first_k_dense_replace layers are dense MLPs, the rest sparse MoE blocks routed by sigmoid
/// scores with e_score_correction_bias for selection, group-limited top-k (n_group, topk_group),
/// normalised when norm_topk_prob and scaled by routed_scaling_factor, plus n_shared_experts shared experts.
/// </summary>
internal sealed class DeepseekV3 : IArchitecture
{
    public string ModelType => "deepseek_v3";

    public CausalLanguageModel Build(ModelConfig config, Checkpoint checkpoint)
    {
        var w = new WeightLoader(config, checkpoint);
        var heads = config.NumAttentionHeads;
        var qLoraRank = config.IsPresent("q_lora_rank") ? config.IntegerField("q_lora_rank") : 1536;
        var kvLoraRank = config.IntegerField("kv_lora_rank") ?? 512;
        var nopeDim = config.IntegerField("qk_nope_head_dim") ?? 128;
        var ropeDim = config.IntegerField("qk_rope_head_dim") ?? 64;
        var valueDim = config.IntegerField("v_head_dim") ?? 128;
        var keyDim = nopeDim + ropeDim;
        var experts = config.IntegerField("n_routed_experts") ?? 256;
        var topK = config.IntegerField("num_experts_per_tok") ?? 8;
        var groups = config.IntegerField("n_group") ?? 8;
        var topKGroups = config.IntegerField("topk_group") ?? 4;
        var normalize = config.FlagField("norm_topk_prob") ?? true;
        var scaling = config.SingleField("routed_scaling_factor") ?? 2.5f;
        var sharedExperts = config.IntegerField("n_shared_experts") ?? 1;
        var firstDense = config.IntegerField("first_k_dense_replace") ?? 3;
        var expertSize = config.IntegerField("moe_intermediate_size") ?? 2048;
        var denseSize = config.IntegerField("intermediate_size") ?? 18432;
        var rope = w.Rope(ropeDim, (config.FlagField("rope_interleave") ?? true) ? RopeLayout.Interleaved : RopeLayout.Half);
        var scoring = config.TextField("scoring_func") ?? "sigmoid";
        if (scoring != "sigmoid")
        {
            throw config.Invalid("scoring_func", $"'{scoring}' is not supported by deepseek_v3 (sigmoid)");
        }

        var layers = w.LayerIndices.Select(l =>
        {
            var p = $"model.layers.{l}.self_attn";
            var query = qLoraRank is { } rank
                ? ((Linear?)null, w.Linear($"{p}.q_a_proj", rank, w.Hidden), w.Norm($"{p}.q_a_layernorm", rank), w.Linear($"{p}.q_b_proj", heads * keyDim, rank))
                : (w.Linear($"{p}.q_proj", heads * keyDim, w.Hidden), (Linear?)null, (RmsNorm?)null, (Linear?)null);
            var attention = new MultiHeadLatentAttention(
                query,
                w.Linear($"{p}.kv_a_proj_with_mqa", kvLoraRank + ropeDim, w.Hidden),
                w.Norm($"{p}.kv_a_layernorm", kvLoraRank),
                w.Linear($"{p}.kv_b_proj", heads * (nopeDim + valueDim), kvLoraRank),
                w.Linear($"{p}.o_proj", w.Hidden, heads * valueDim),
                heads, nopeDim, ropeDim, valueDim, rope, AttentionScale(config, keyDim));

            var m = $"model.layers.{l}.mlp";
            IFeedForward feedForward = l >= firstDense
                ? new SparseMoeBlock(
                    w.Linear($"{m}.gate", experts, w.Hidden),
                    Routing.SigmoidGroupLimitedTopK(
                        checkpoint.Contains($"{m}.gate.e_score_correction_bias") ? checkpoint.Vector($"{m}.gate.e_score_correction_bias", experts) : null,
                        groups, topKGroups, normalize, scaling),
                    topK,
                    Enumerable.Range(0, experts).Select(e => w.Mlp($"{m}.experts.{e}", expertSize)).ToArray(),
                    sharedExpert: sharedExperts > 0 ? w.Mlp($"{m}.shared_experts", expertSize * sharedExperts) : null)
                : w.Mlp(m, denseSize);
            return w.Layer(l, attention, feedForward);
        }).ToArray();

        return w.Model(layers);
    }

    /// <summary>qk_head_dim^-½, times mscale² when YaRN scaling sets mscale_all_dim.</summary>
    private static float AttentionScale(ModelConfig config, int keyDim)
    {
        var scale = 1.0 / Math.Sqrt(keyDim);
        var rope = config.Rope;
        if (rope.Type != "default" && rope.Get("mscale_all_dim") is { } all && all != 0 && rope.Get("factor") is { } factor)
        {
            var mscale = RopeFactory.YarnMscale(factor, all);
            scale *= mscale * mscale;
        }

        return (float)scale;
    }
}
