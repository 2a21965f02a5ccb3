using Orleans.MoE.Models.Checkpoints;
using Orleans.MoE.Models.Generation;

namespace Orleans.MoE.Models.Tests.Generation;

public sealed class TokenGeneratorTests : IDisposable
{
    private readonly CausalLanguageModel _model = ModelLoader.Load(Path.Combine(RepositoryPaths.Fixtures, "mixtral-tiny"));

    public void Dispose() => _model.Dispose();

    [Fact]
    public async Task Greedy_stream_reproduces_the_reference_generation()
    {
        using var reference = Checkpoint.Open(Path.Combine(RepositoryPaths.Fixtures, "mixtral-tiny", "reference.safetensors"));
        var prompt = reference.ReadInt64s("greedy_prompt").Select(i => (int)i).ToArray();
        var expected = reference.ReadInt64s("greedy_output").Skip(prompt.Length).Select(i => (int)i).ToArray();

        var tokens = new List<GeneratedToken>();
        await foreach (var token in TokenGenerator.GenerateAsync(_model, prompt, new GenerationOptions { MaxNewTokens = expected.Length }))
        {
            tokens.Add(token);
        }

        Assert.Equal(expected, tokens.Select(t => t.Id));
        Assert.All(tokens.SkipLast(1), t => Assert.Null(t.Finish));
        Assert.Equal(FinishReason.Length, tokens[^1].Finish);
    }

    [Fact]
    public async Task Generation_stops_at_a_stop_token_and_reports_it()
    {
        var prompt = new[] { 5, 17, 42 };
        var greedy = GreedyDecoder.Generate(_model, prompt, 6);
        var stop = greedy[3];
        var options = new GenerationOptions { MaxNewTokens = 6, StopTokens = new HashSet<int> { stop } };

        var tokens = new List<GeneratedToken>();
        await foreach (var token in TokenGenerator.GenerateAsync(_model, prompt, options))
        {
            tokens.Add(token);
        }

        var firstStop = Array.IndexOf(greedy, stop);
        Assert.Equal(greedy.Take(firstStop + 1), tokens.Select(t => t.Id));
        Assert.Equal(FinishReason.Stop, tokens[^1].Finish);
    }

    [Fact]
    public async Task Cancellation_ends_the_stream()
    {
        using var cancellation = new CancellationTokenSource();
        var received = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in TokenGenerator.GenerateAsync(_model, [1, 2, 3], new GenerationOptions { MaxNewTokens = 1000 }, cancellation.Token))
            {
                if (++received == 3)
                {
                    await cancellation.CancelAsync();
                }
            }
        });
        Assert.Equal(3, received);
    }

    [Fact]
    public async Task Seeded_sampling_is_reproducible()
    {
        var options = new GenerationOptions { MaxNewTokens = 12, Sampling = new SamplingOptions { Temperature = 1.2f, TopP = 0.9f, Seed = 5 } };
        async Task<int[]> Run()
        {
            var ids = new List<int>();
            await foreach (var token in TokenGenerator.GenerateAsync(_model, [7, 8, 9], options))
            {
                ids.Add(token.Id);
            }

            return [.. ids];
        }

        Assert.Equal(await Run(), await Run());
    }

    [Fact]
    public async Task An_empty_prompt_is_refused()
    {
        await Assert.ThrowsAsync<ArgumentException>(async () =>
        {
            await foreach (var _ in TokenGenerator.GenerateAsync(_model, [], new GenerationOptions()))
            {
            }
        });
    }

    [Fact]
    public void A_token_outside_the_vocabulary_is_refused()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => _model.Forward([_model.VocabSize], _model.CreateCache()));
        Assert.Contains("outside the vocabulary", error.Message);
    }
}
