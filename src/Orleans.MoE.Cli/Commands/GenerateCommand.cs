using System.CommandLine;
using Orleans.MoE.Models;
using Orleans.MoE.Models.Generation;

namespace Orleans.MoE.Cli.Commands;

/// <summary><c>moe generate</c>: stream a completion of a prompt.</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var prompt = new Option<string>("--prompt", "-p") { Description = "The text to complete", Required = true };
        var maxTokens = new Option<int?>("--max-tokens") { Description = "Most tokens to generate (default: the model's generation_config max_new_tokens, else 64)" };
        var temperature = new Option<float>("--temperature") { Description = "Sampling temperature; 0 is greedy", DefaultValueFactory = _ => 0f };
        var topK = new Option<int>("--top-k") { Description = "Sample among the k most likely tokens (0: all)" };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling threshold in (0, 1]", DefaultValueFactory = _ => 1f };
        var seed = new Option<int?>("--seed") { Description = "Seed for reproducible sampling" };
        var command = new Command("generate", "Generate text from a prompt, streaming it as it comes")
        {
            model, prompt, maxTokens, temperature, topK, topP, seed,
        };
        command.SetAction((result, cancellationToken) => CommonOptions.RunAsync(async () =>
        {
            var sampling = new SamplingOptions
            {
                Temperature = result.GetValue(temperature),
                TopK = result.GetValue(topK),
                TopP = result.GetValue(topP),
                Seed = result.GetValue(seed),
            };
            sampling.Validate();
            var directory = CommonOptions.ResolveModel(result.GetValue(model));
            using var loaded = CommonOptions.Load(directory, LanguageModel.Load);
            var budget = result.GetValue(maxTokens) ?? loaded.Generation.MaxNewTokens ?? 64;
            await foreach (var chunk in loaded.GenerateAsync(result.GetValue(prompt)!, budget, sampling, cancellationToken))
            {
                Console.Write(chunk.Text);
            }

            Console.WriteLine();
            return 0;
        }));
        return command;
    }
}
