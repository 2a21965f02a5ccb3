using Orleans.MoE.Models.Configuration;

namespace Orleans.MoE.Models.Generation;

/// <summary>A model's <c>generation_config.json</c>: its stop tokens and default token budget.</summary>
public sealed record GenerationConfig(IReadOnlySet<int> StopTokens, int? MaxNewTokens)
{
    /// <summary>Stop tokens from generation_config.json's eos_token_id, else config.json's.</summary>
    public static GenerationConfig Load(string modelDirectory, ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var path = Path.Combine(modelDirectory, "generation_config.json");
        if (!File.Exists(path))
        {
            return new GenerationConfig(config.EosTokenIds.ToHashSet(), null);
        }

        var generation = ConfigFile.ParseFile(File.ReadAllText(path), path);
        var eos = generation.IntList("eos_token_id") ?? config.EosTokenIds;
        return new GenerationConfig(eos.ToHashSet(), generation.IntegerField("max_new_tokens"));
    }
}
