using Orleans.MoE.Models.Architectures;
using Orleans.MoE.Models.Checkpoints;
using Orleans.MoE.Models.Configuration;

namespace Orleans.MoE.Models;

/// <summary>Opens a Hugging Face model directory: config.json, the (sharded) safetensors, the architecture.</summary>
public static class ModelLoader
{
    /// <summary>
    /// Builds the model. Weights are memory-mapped, not copied; with <paramref name="progress"/> the
    /// checkpoint's pages are read in once up front (bytes done, bytes total) so the first request
    /// does not pay for the disk.
    /// </summary>
    public static CausalLanguageModel Load(string directory, IProgress<(long Done, long Total)>? progress = null)
    {
        var config = ModelConfig.Load(directory);
        var architecture = Architecture.For(config);
        var checkpoint = Checkpoint.Open(directory);
        try
        {
            var model = architecture.Build(config, checkpoint);
            if (progress is not null)
            {
                checkpoint.Prefetch(progress);
            }

            return model;
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }
}
