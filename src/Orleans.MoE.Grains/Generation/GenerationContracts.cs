using Orleans.MoE.Runtime;
using Orleans.MoE.Runtime.Serialization;

namespace Orleans.MoE.Grains.Generation;

/// <summary>
/// A sequence to generate: the prompt's token ids, the budget, stop tokens and sampling. A sequence
/// resumed on another silo after its scheduler's silo died carries the tokens produced so far at the end
/// of <see cref="Prompt"/>, counted by <see cref="Resumed"/> (so sampling with a seed continues exactly).
/// <see cref="RequestId"/> names the caller's request in the silo's logs.
/// </summary>
[GenerateSerializer]
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
public sealed record GenerationChunk(int[] Tokens, string? Finish);

/// <summary>
/// One generated sequence (key "model/id"), placed on a silo that serves the model (the caller's
/// gateway when it can). Its tokens are produced by that silo's scheduler and read by the caller in
/// order; a caller that stops reading for the reader lease has its sequence cancelled.
/// </summary>
public interface IGenerationGrain : IGrainWithStringKey
{
    /// <summary>Admits the sequence to this silo's scheduler; fails with a busy error when its queue is full.</summary>
    Task StartAsync(GenerationRequest request);

    /// <summary>Tokens from <paramref name="from"/> on: waits (up to about a second) until there is at least one or the sequence ended.</summary>
    Task<GenerationChunk> ReadAsync(int from);

    /// <summary>Stops generating (the caller went away).</summary>
    Task CancelAsync();
}

/// <summary>The silo's generation queue is full; try again later or on another silo.</summary>
public sealed class MeshBusyException : Exception
{
    public MeshBusyException(string message)
        : base(message)
    {
    }

    public MeshBusyException()
    {
    }

    public MeshBusyException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The sequence would not fit the model's context (prompt plus budget beyond max_position_embeddings).</summary>
public sealed class ContextLengthExceededException : Exception
{
    public ContextLengthExceededException(string message)
        : base(message)
    {
    }

    public ContextLengthExceededException()
    {
    }

    public ContextLengthExceededException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The sequence's scheduler lost it (its silo restarted, or the grain was re-created elsewhere): resubmit.</summary>
public sealed class SequenceLostException : Exception
{
    public SequenceLostException(string message)
        : base(message)
    {
    }

    public SequenceLostException()
    {
    }

    public SequenceLostException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
