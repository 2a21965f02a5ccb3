namespace Orleans.MoE.Grains.Generation;

/// <summary>The sequence would not fit the model's context (prompt plus budget beyond max_position_embeddings).</summary>
[GenerateSerializer]
[Alias("moe.ContextLengthExceededException")]
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
