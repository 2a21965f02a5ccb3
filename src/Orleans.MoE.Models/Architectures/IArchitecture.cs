using Orleans.MoE.Models.Checkpoints;
using Orleans.MoE.Models.Configuration;

namespace Orleans.MoE.Models.Architectures;

/// <summary>A model family: builds its model from a config and checkpoint, as the reference defines it.</summary>
public interface IArchitecture
{
    /// <summary>The config's <c>model_type</c>.</summary>
    string ModelType { get; }

    CausalLanguageModel Build(ModelConfig config, Checkpoint checkpoint);
}

/// <summary>The architectures this project serves, by model_type.</summary>
public static class Architecture
{
    private static readonly IArchitecture[] s_all =
    [
        new Mixtral(),
        new Qwen2Moe(),
        new Qwen3Moe(),
        new Olmoe(),
        new DeepseekV3(),
    ];

    public static IReadOnlyList<string> Supported => s_all.Select(a => a.ModelType).ToArray();

    public static IArchitecture For(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return s_all.FirstOrDefault(a => a.ModelType == config.ModelType)
            ?? throw new ModelConfigException($"{config.Source}: unknown model_type '{config.ModelType}'; supported: {string.Join(", ", Supported)}");
    }
}
