using System.Text.Json;
using Orleans.MoE.Models.Generation;

namespace Orleans.MoE.Models.Tests.Generation;

/// <summary>The demo model end to end: text in, the same text out as its training run recorded.</summary>
public sealed class LanguageModelTests : IDisposable
{
    private readonly LanguageModel _model = LanguageModel.Load(RepositoryPaths.DemoModel);

    public static TheoryData<int> Samples() => [0, 1, 2, 3];

    public void Dispose() => _model.Dispose();

    [Theory]
    [MemberData(nameof(Samples))]
    public async Task Greedy_generation_streams_the_recorded_text(int sample)
    {
        var recorded = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.DemoModel, "training.json"))).RootElement.GetProperty("samples")[sample];
        var prompt = recorded.GetProperty("prompt").GetString()!;
        var ids = recorded.GetProperty("greedy_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var promptIds = _model.EncodePrompt(prompt);
        Assert.Equal(ids.Take(promptIds.Count), promptIds);

        var chunks = new List<TextChunk>();
        await foreach (var chunk in _model.GenerateAsync(prompt, ids.Length - promptIds.Count, SamplingOptions.Greedy))
        {
            chunks.Add(chunk);
        }

        Assert.Equal(ids.Skip(promptIds.Count), chunks.Select(c => c.TokenId));
        Assert.Equal(recorded.GetProperty("text").GetString(), prompt + string.Concat(chunks.Select(c => c.Text)));
        Assert.Equal(FinishReason.Length, chunks[^1].Finish);
    }

    [Fact]
    public void A_cache_that_grows_from_one_position_gives_the_logits_of_one_sized_to_fit()
    {
        // The mesh starts a sequence's cache at prompt + min(max_tokens, 256) positions and grows it from there.
        var network = _model.Network;
        var grown = network.CreateCache(capacity: 1);
        var sized = network.CreateCache(capacity: 256);
        int[] tokens = [.. _model.EncodePrompt("def fibonacci(n):\n    ")];
        for (var step = 0; step < 40; step++)
        {
            var expected = network.Forward(tokens, sized);
            Assert.Equal(expected, network.Forward(tokens, grown));
            tokens = [System.Numerics.Tensors.TensorPrimitives.IndexOfMax(expected)];
        }

        Assert.True(grown.Length > 40, $"{grown.Length} positions");
    }

    [Fact]
    public void The_demo_model_stops_at_its_eos_token()
    {
        Assert.Contains(2, _model.Generation.StopTokens);
        Assert.Equal(64, _model.Generation.MaxNewTokens);
    }
}
