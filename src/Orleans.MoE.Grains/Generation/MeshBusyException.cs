namespace Orleans.MoE.Grains.Generation;

/// <summary>The silo's generation queue is full; try again later or on another silo.</summary>
[GenerateSerializer]
[Alias("moe.MeshBusyException")]
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
