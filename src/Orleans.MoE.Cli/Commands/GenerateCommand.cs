using System.CommandLine;
using Orleans.MoE.Gpu;
using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Grains.Catalog;
using Orleans.MoE.Grains.Generation;
using Orleans.MoE.Grains.Hosting;
using Orleans.MoE.Models;
using Orleans.MoE.Models.Generation;

namespace Orleans.MoE.Cli.Commands;

/// <summary><c>moe generate</c>: stream a completion of a prompt, in this process or on a running cluster (<c>--gateway</c>).</summary>
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
        var device = CommonOptions.Device("cpu", "the model in this process");
        var cluster = new ClusterConnection();
        var command = new Command("generate", "Generate text from a prompt, streaming it as it comes; with --gateway on a running cluster (--model is then the mesh's model name)")
        {
            model, prompt, maxTokens, temperature, topK, topP, seed, device,
        };
        foreach (var option in cluster.All)
        {
            command.Options.Add(option);
        }

        command.SetAction((result, cancellationToken) => ClusterConnection.RunAsync(async () =>
        {
            var sampling = new SamplingOptions
            {
                Temperature = result.GetValue(temperature),
                TopK = result.GetValue(topK),
                TopP = result.GetValue(topP),
                Seed = result.GetValue(seed),
            };
            sampling.Validate();
            if (ClusterConnection.Given(result, cluster))
            {
                if (result.GetValue(device) != "cpu")
                {
                    throw new ArgumentException("--device chooses what runs the model in this process; with --gateway, set Mesh:Device on the cluster's silos");
                }

                await using var client = await cluster.ConnectAsync(result, cancellationToken);
                return await GenerateOnClusterAsync(client, result.GetValue(model), result.GetValue(prompt)!, result.GetValue(maxTokens), sampling, cancellationToken);
            }

            var directory = CommonOptions.ResolveModel(result.GetValue(model));
            using var loaded = CommonOptions.Load(directory, LanguageModel.Load);
            var budget = result.GetValue(maxTokens) ?? loaded.Generation.MaxNewTokens ?? 64;
            using var choice = GpuDevice.Choose(DeviceKinds.Parse(result.GetValue(device)));
            if (choice.Requested is not DeviceKind.Cpu)
            {
                await Console.Error.WriteLineAsync($"device {choice.Reason}");
            }

            // On a device: the whole model's weights and the sequence's KV cache there; sampling on the host, as on the CPU engine.
            using var onDevice = choice.Device is { } gpu ? GpuModel.Upload(gpu, loaded.Network) : null;
            GpuSequence? sequence = null;
            try
            {
                Func<int, Func<int[], float[]>>? forward = onDevice is null ? null : capacity =>
                {
                    sequence = onDevice.CreateSequence(capacity);
                    return tokens => onDevice.Forward(tokens, sequence);
                };
                await foreach (var chunk in loaded.GenerateAsync(result.GetValue(prompt)!, budget, sampling, forward, cancellationToken))
                {
                    Console.Write(chunk.Text);
                }
            }
            finally
            {
                sequence?.Dispose();
            }

            Console.WriteLine();
            return 0;
        }));
        return command;
    }

    /// <summary>Tokenizes on the mesh, streams the tokens through the mesh client and prints the text as it grows.</summary>
    private static async Task<int> GenerateOnClusterAsync(MeshConnection client, string? modelName, string prompt, int? maxTokens, SamplingOptions sampling, CancellationToken cancellationToken)
    {
        var name = await ClusterConnection.ModelAsync(client.GrainFactory, modelName);
        var model = client.GrainFactory.GetGrain<IModelGrain>(name);
        var info = await model.GetInfoAsync();
        var ids = await model.EncodeAsync(prompt);
        var request = new GenerationRequest(name, ids, maxTokens ?? info.DefaultMaxNewTokens ?? 64, info.StopTokens,
            sampling.Temperature, sampling.TopK, sampling.TopP, sampling.Seed);
        var produced = new List<int>();
        var printed = 0;
        await foreach (var token in new MeshClient(client.GrainFactory).GenerateAsync(request, cancellationToken))
        {
            produced.Add(token.Id);
            var text = await model.DecodeAsync([.. produced]);
            if (!text.EndsWith('\uFFFD') && text.Length > printed)
            {
                Console.Write(text[printed..]);
                printed = text.Length;
            }
        }

        Console.WriteLine();
        return 0;
    }
}
