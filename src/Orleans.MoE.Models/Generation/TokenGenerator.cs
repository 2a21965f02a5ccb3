using System.Runtime.CompilerServices;

namespace Orleans.MoE.Models.Generation;

/// <summary>What to generate: a token budget, stop tokens and the sampling rule.</summary>
public sealed record GenerationOptions
{
    public int MaxNewTokens { get; init; } = 64;

    public SamplingOptions Sampling { get; init; } = SamplingOptions.Greedy;

    /// <summary>Token ids that end generation (they are yielded, with <see cref="FinishReason.Stop"/>).</summary>
    public IReadOnlySet<int> StopTokens { get; init; } = new HashSet<int>();
}

/// <summary>One generated token; <see cref="Finish"/> is set on the last.</summary>
public readonly record struct GeneratedToken(int Id, FinishReason? Finish);

/// <summary>
/// Autoregressive decoding of one sequence through the KV cache: prefill the prompt, then one token per
/// step until a stop token or the budget. Steps run on the thread pool; cancellation is honoured
/// between steps.
/// </summary>
public static class TokenGenerator
{
    public static IAsyncEnumerable<GeneratedToken> GenerateAsync(
        CausalLanguageModel model, IReadOnlyList<int> prompt, GenerationOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(options);
        KvCache? cache = null; // made at the first step, once the arguments are known to be valid
        return GenerateAsync(tokens => model.Forward(tokens, cache ??= model.CreateCache(prompt.Count + options.MaxNewTokens)), prompt, options, cancellationToken);
    }

    /// <summary>
    /// The same with any forward pass that keeps its own cache (the GPU backend's): <paramref name="forward"/>
    /// takes the new tokens (the prompt, then one token per step) and returns the last one's logits.
    /// </summary>
    public static async IAsyncEnumerable<GeneratedToken> GenerateAsync(
        Func<int[], float[]> forward, IReadOnlyList<int> prompt, GenerationOptions options,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(forward);
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(options);
        if (prompt.Count == 0)
        {
            throw new ArgumentException("the prompt has no tokens", nameof(prompt));
        }

        ArgumentOutOfRangeException.ThrowIfNegative(options.MaxNewTokens);
        var sampler = new Sampler(options.Sampling);
        if (options.MaxNewTokens == 0)
        {
            yield break;
        }

        var input = prompt.ToArray();
        for (var produced = 1; ; produced++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var step = input;
            var logits = await Task.Run(() => forward(step), cancellationToken).ConfigureAwait(false);
            var next = sampler.Next(logits);
            var finish = FinishRule.After(next, produced, options.StopTokens, options.MaxNewTokens);
            yield return new GeneratedToken(next, finish);
            if (finish is not null)
            {
                yield break;
            }

            input = [next];
        }
    }
}
