using System.CommandLine;
using System.Text.Json;
using Orleans.MoE.Models.Layers;

namespace Orleans.MoE.Cli.Commands;

/// <summary><c>moe info</c>: what a checkpoint holds.</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var json = CommonOptions.Json();
        var command = new Command("info", "Print a model's architecture, parameters, bytes and experts") { model, json };
        command.SetAction((result, _) => CommonOptions.RunAsync(() =>
        {
            var directory = CommonOptions.ResolveModel(result.GetValue(model));
            using var loaded = CommonOptions.LoadModel(directory);
            var checkpoint = loaded.Checkpoint;
            var entries = checkpoint.TensorNames.Select(checkpoint.Entry).ToList();
            var expertEntries = entries.Where(e => e.Name.Contains(".experts.", StringComparison.Ordinal)).ToList();
            var moeLayers = loaded.Layers.Select(l => l.FeedForward).OfType<SparseMoeBlock>().ToList();
            var info = new Dictionary<string, object?>
            {
                ["model"] = Path.GetFullPath(directory),
                ["architecture"] = loaded.Config.ModelType,
                ["layers"] = loaded.Layers.Count,
                ["moe_layers"] = moeLayers.Count,
                ["hidden_size"] = loaded.HiddenSize,
                ["vocab_size"] = loaded.VocabSize,
                ["attention_heads"] = loaded.Config.NumAttentionHeads,
                ["key_value_heads"] = loaded.Config.NumKeyValueHeads,
                ["experts_per_layer"] = moeLayers.FirstOrDefault()?.ExpertCount ?? 0,
                ["experts_per_token"] = moeLayers.FirstOrDefault()?.TopK ?? 0,
                ["shared_experts"] = moeLayers.Any(m => m.SharedExpert is not null),
                ["experts_total"] = moeLayers.Sum(m => m.ExpertCount),
                ["parameters"] = entries.Sum(e => e.ElementCount),
                ["expert_parameters"] = expertEntries.Sum(e => e.ElementCount),
                ["bytes"] = entries.Sum(e => e.ByteLength),
                ["bytes_read_per_token"] = loaded.WeightBytesPerToken(),
                ["dtypes"] = entries.GroupBy(e => e.DType.ToString()).ToDictionary(g => g.Key, g => g.Count()),
                ["shards"] = entries.Select(e => Path.GetFileName(e.File)).Distinct().Count(),
            };

            if (result.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(info));
            }
            else
            {
                foreach (var (key, value) in info)
                {
                    var text = value is Dictionary<string, int> d ? string.Join(", ", d.Select(p => $"{p.Key}: {p.Value} tensors")) : value?.ToString();
                    Console.WriteLine($"{key,-22} {text}");
                }
            }

            return Task.FromResult(0);
        }));
        return command;
    }
}
