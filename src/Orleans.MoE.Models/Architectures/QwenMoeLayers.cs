using Orleans.MoE.Models.Configuration;

namespace Orleans.MoE.Models.Architectures;

/// <summary>Rules the Qwen-MoE configs (and OLMoE's expert count) share.</summary>
internal static class QwenMoeLayers
{
    /// <summary>num_experts, spelled num_local_experts in some configs.</summary>
    public static int ExpertCount(ModelConfig config, int defaultCount) =>
        config.IntegerField("num_experts") ?? config.IntegerField("num_local_experts") ?? defaultCount;

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

    /// <summary>The sliding window for a layer whose layer_types entry is "sliding_attention" (and use_sliding_window), else none.</summary>
    public static int? SlidingWindow(ModelConfig config, int layer)
    {
        var types = config.StringList("layer_types");
        var sliding = types is not null && layer < types.Count && types[layer] == "sliding_attention"
            && (config.FlagField("use_sliding_window") ?? false);
        return sliding ? config.IntegerField("sliding_window") : null;
    }
}
