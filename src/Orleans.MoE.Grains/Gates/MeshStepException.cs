namespace Orleans.MoE.Grains.Gates;

/// <summary>A step could not get every expert's result within the retry window.</summary>
[GenerateSerializer]
[Alias("moe.MeshStepException")]
public sealed class MeshStepException : Exception
{
    public MeshStepException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    public MeshStepException(string message)
        : base(message)
    {
    }

    public MeshStepException()
    {
    }
}
