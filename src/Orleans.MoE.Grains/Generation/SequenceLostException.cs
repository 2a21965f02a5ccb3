namespace Orleans.MoE.Grains.Generation;

/// <summary>The sequence's scheduler lost it (its silo restarted, or the grain was re-created elsewhere): resubmit.</summary>
[GenerateSerializer]
[Alias("moe.SequenceLostException")]
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
