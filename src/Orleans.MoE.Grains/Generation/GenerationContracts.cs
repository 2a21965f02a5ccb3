
namespace Orleans.MoE.Grains.Generation;

/// <summary>
/// A sequence to generate: the prompt's token ids, the budget, stop tokens and sampling. A sequence
/// resumed on another silo after its scheduler's silo died carries the tokens produced so far at the end
/// of <see cref="Prompt"/>, counted by <see cref="Resumed"/> (so sampling with a seed continues exactly).
/// <see cref="RequestId"/> names the caller's request in the silo's logs.
/// </summary>
[GenerateSerializer]
[Alias("moe.GenerationRequest")]
public sealed record GenerationRequest(
    string Model,
    int[] Prompt,
    int MaxNewTokens,
    int[] StopTokens,
    float Temperature = 0,
    int TopK = 0,
    float TopP = 1,
    int? Seed = null,
    int Resumed = 0,
    string? RequestId = null);

/// <summary>Tokens from position <c>from</c> on; <see cref="Finish"/> ("stop", "length") once the sequence ended.</summary>
[GenerateSerializer]
[Alias("moe.GenerationChunk")]
public sealed record GenerationChunk(int[] Tokens, string? Finish);

/// <summary>
/// One generated sequence (key "model/id"), placed on a silo that serves the model (the caller's
/// gateway when it can). Its tokens are produced by that silo's scheduler and read by the caller in
/// order; a caller that stops reading for the reader lease has its sequence cancelled.
/// </summary>
[Alias("moe.IGenerationGrain")]
public interface IGenerationGrain : IGrainWithStringKey
{
    /// <summary>Admits the sequence to this silo's scheduler; fails with a busy error when its queue is full.</summary>
    [Alias("Start")]
    Task StartAsync(GenerationRequest request);

    /// <summary>Tokens from <paramref name="from"/> on: waits (up to about a second) until there is at least one or the sequence ended.</summary>
    [Alias("Read")]
    Task<GenerationChunk> ReadAsync(int from);

    /// <summary>Stops generating (the caller went away).</summary>
    [Alias("Cancel")]
    Task CancelAsync();
}

