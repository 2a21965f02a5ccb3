using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Orleans.MoE.Models.Checkpoints.Random;

namespace Orleans.MoE.Cli.Commands;

/// <summary><c>moe checkpoint random</c>: writes random-weight checkpoints of any supported architecture and size.</summary>
internal static class CheckpointCommand
{
    private static readonly JsonSerializerOptions s_json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static Command Create()
    {
        var command = new Command("checkpoint", "Checkpoint tools");
        command.Subcommands.Add(Random());
        return command;
    }

    private static Command Random()
    {
        var output = new Option<string>("--output", "-o") { Description = "Directory to write (created; existing files of the same names are replaced)", Required = true };
        var architecture = new Option<string?>("--architecture", "-a") { Description = $"model_type of the template: {string.Join(", ", RandomConfig.Architectures)} (default: mixtral, or the --config's)" };
        var config = new Option<string?>("--config") { Description = "A config.json (or a model directory) to start from instead of a template" };
        var hidden = new Option<int?>("--hidden-size") { Description = "hidden_size" };
        var layers = new Option<int?>("--layers") { Description = "num_hidden_layers" };
        var heads = new Option<int?>("--heads") { Description = "num_attention_heads" };
        var kvHeads = new Option<int?>("--kv-heads") { Description = "num_key_value_heads" };
        var experts = new Option<int?>("--experts") { Description = "Routed experts per layer (num_local_experts, num_experts or n_routed_experts)" };
        var topK = new Option<int?>("--top-k") { Description = "num_experts_per_tok" };
        var expertSize = new Option<int?>("--expert-size") { Description = "Expert FFN width (intermediate_size for mixtral and olmoe, else moe_intermediate_size)" };
        var vocab = new Option<int?>("--vocab-size") { Description = "vocab_size (the demo tokenizer has 4096 tokens)" };
        var set = new Option<string[]>("--set") { Description = "Any config field, as name=value (value in JSON); repeatable", AllowMultipleArgumentsPerToken = false };
        var seed = new Option<int>("--seed") { Description = "Seed: the same seed and config give the same files", DefaultValueFactory = _ => 1 };
        var shardSize = new Option<int>("--shard-size-mb") { Description = "Largest shard, in MiB", DefaultValueFactory = _ => 2048 };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Directory whose tokenizer files to copy (default: the demo model's)" };
        var json = CommonOptions.Json();
        var command = new Command("random", "Write a random-weight Hugging Face checkpoint (bf16 safetensors shards, index, config.json, tokenizer) for sizing and benchmarks")
        {
            output, architecture, config, hidden, layers, heads, kvHeads, experts, topK, expertSize, vocab, set, seed, shardSize, tokenizer, json,
        };
        command.SetAction((result, _) => CommonOptions.RunAsync(() =>
        {
            var settings = result.GetValue(config) is { } file
                ? JsonNode.Parse(File.ReadAllText(Directory.Exists(file) ? Path.Combine(file, "config.json") : file)) as JsonObject
                    ?? throw new ArgumentException($"{file}: not a JSON object")
                : RandomConfig.Template(result.GetValue(architecture) ?? "mixtral");
            if (result.GetValue(architecture) is { } type && result.GetValue(config) is not null && type != RandomConfig.ModelType(settings))
            {
                throw new ArgumentException($"--architecture {type} disagrees with the config's model_type {RandomConfig.ModelType(settings)}");
            }

            var modelType = RandomConfig.ModelType(settings);
            foreach (var (option, field) in new[]
            {
                (hidden, "hidden_size"), (layers, "num_hidden_layers"), (heads, "num_attention_heads"), (kvHeads, "num_key_value_heads"),
                (experts, RandomConfig.ExpertCountField(modelType)), (topK, "num_experts_per_tok"), (expertSize, RandomConfig.ExpertSizeField(modelType)), (vocab, "vocab_size"),
            })
            {
                if (result.GetValue(option) is { } value)
                {
                    settings[field] = value;
                }
            }

            foreach (var assignment in result.GetValue(set) ?? [])
            {
                RandomConfig.Set(settings, assignment);
            }

            if (result.GetValue(shardSize) < 1)
            {
                throw new ArgumentException("--shard-size-mb must be at least 1");
            }

            var tokenizerDirectory = result.GetValue(tokenizer) ?? CommonOptions.ResolveModel(null);
            var summary = RandomCheckpoint.Write(result.GetValue(output)!, settings, result.GetValue(seed), (long)result.GetValue(shardSize) << 20, tokenizerDirectory);
            Console.WriteLine(result.GetValue(json)
                ? JsonSerializer.Serialize(summary, s_json)
                : $"{summary.Directory}: {summary.ModelType}, {summary.Parameters / 1e6:F1}M parameters, {summary.Bytes / 1e6:F1} MB in {summary.Shards} shard(s), {summary.Tensors} tensors");
            return Task.FromResult(0);
        }));
        return command;
    }
}
