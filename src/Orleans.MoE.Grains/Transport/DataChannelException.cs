namespace Orleans.MoE.Grains.Transport;

/// <summary>
/// The data channel to a silo could not be opened or broke (the silo died, stopped, or was declared dead):
/// a fault of reachability, so the gate sends its experts again (<see cref="MeshFaults.IsTransient"/>).
/// </summary>
public sealed class DataChannelException : IOException
{
    public DataChannelException()
    {
    }

    public DataChannelException(string message)
        : base(message)
    {
    }

    public DataChannelException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
