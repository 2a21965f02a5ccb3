using Orleans.MoE.Models.Configuration;
using Orleans.MoE.Models.Layers;

namespace Orleans.MoE.Models.Architectures;

/// <summary>
/// The feed-forward rules the Qwen-MoE configs share: which layers are sparse (decoder_sparse_step,
/// mlp_only_layers), softmax top-k routing renormalised when norm_topk_prob, dense MLPs elsewhere;
/// each config class has its own defaults.
/// </summary>
internal sealed class QwenMoeLayers(WeightLoader w, int defaultExperts, int defaultTopK, int defaultExpertSize, int defaultDenseSize)
{
    private readonly ModelConfig _config = w.Config;

    /// <summary>num_experts, spelled num_local_experts in some configs.</summary>
    public static int ExpertCount(ModelConfig config, int defaultCount) =>
        config.IntegerField("num_experts") ?? config.IntegerField("num_local_experts") ?? defaultCount;

    /// <summary>The sliding window for a layer whose layer_types entry is "sliding_attention" (and use_sliding_window), else none.</summary>
    public static int? SlidingWindow(ModelConfig config, int layer)
    {
        var types = config.StringList("layer_types");
        var sliding = types is not null && layer < types.Count && types[layer] == "sliding_attention"
            && (config.FlagField("use_sliding_window") ?? false);
        return sliding ? config.IntegerField("sliding_window") : null;
    }

    /// <summary>Layer <paramref name="layer"/>'s feed-forward: a sparse block (with the shared expert <paramref name="sharedExpert"/> builds from the mlp prefix) or a dense MLP.</summary>
    public IFeedForward FeedForward(int layer, Func<string, (SwiGluMlp Expert, Linear? Gate)>? sharedExpert)
    {
        var p = $"model.layers.{layer}.mlp";
        var experts = ExpertCount(_config, defaultExperts);
        if (!IsSparse(_config, layer, experts))
        {
            return w.Mlp(p, _config.IntegerField("intermediate_size") ?? defaultDenseSize);
        }

        var expertSize = _config.IntegerField("moe_intermediate_size") ?? defaultExpertSize;
        var shared = sharedExpert?.Invoke(p);
        return new SparseMoeBlock(
            w.Linear($"{p}.gate", experts, w.Hidden),
            Routing.SoftmaxTopK(_config.FlagField("norm_topk_prob") ?? false),
            _config.IntegerField("num_experts_per_tok") ?? defaultTopK,
            Enumerable.Range(0, experts).Select(e => w.Mlp($"{p}.experts.{e}", expertSize)).ToArray(),
            shared?.Expert,
            shared?.Gate);
    }

    /// <summary>A layer is sparse unless listed in mlp_only_layers, and when (layer + 1) is a multiple of decoder_sparse_step.</summary>
    public static bool IsSparse(ModelConfig config, int layer, int experts)
    {
        var mlpOnly = config.IntList("mlp_only_layers") ?? [];
        var step = config.IntegerField("decoder_sparse_step") ?? 1;
        if (step <= 0)
        {
            throw config.Invalid("decoder_sparse_step", "must be positive");
        }

        return !mlpOnly.Contains(layer) && experts > 0 && (layer + 1) % step == 0;
    }
}
