namespace Orleans.MoE.Models.Checkpoints;

/// <summary>A checkpoint file that cannot be read as it claims to be; the message names the file (and tensor).</summary>
public sealed class CheckpointException : Exception
{
    public CheckpointException(string message)
        : base(message)
    {
    }

    public CheckpointException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public CheckpointException()
    {
    }
}
