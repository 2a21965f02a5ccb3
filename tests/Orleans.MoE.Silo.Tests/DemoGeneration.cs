using Orleans.MoE.Grains.Generation;
using Orleans.MoE.Grains.Hosting;
using Orleans.MoE.Models;
using Orleans.MoE.Models.Generation;

namespace Orleans.MoE.Silo.Tests;

/// <summary>A greedy completion of the demo model through a cluster, and what one process generates for it.</summary>
internal static class DemoGeneration
{
    private static readonly int[] Prompt = [1, 300, 301, 302];

    public static int[] Expected(int tokens)
    {
        using var model = ModelLoader.Load(Path.Combine(SiloProcess.Root, "models", Providers.Demo));
        return GreedyDecoder.Generate(model, Prompt, tokens);
    }

    public static async Task<int[]> GenerateAsync(MeshConnection client, int tokens)
    {
        var output = new List<int>();
        await foreach (var token in new MeshClient(client.Client).GenerateAsync(new GenerationRequest(Providers.Demo, Prompt, tokens, [])))
        {
            output.Add(token.Id);
        }

        return output.ToArray();
    }
}
