namespace Orleans.MoE.Grains.Transport;

/// <summary>A silo received an expert batch and failed to compute it; the message is the silo's own.</summary>
public sealed class RemoteExpertException : Exception
{
    public RemoteExpertException()
    {
    }

    public RemoteExpertException(string message)
        : base(message)
    {
    }

    public RemoteExpertException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
