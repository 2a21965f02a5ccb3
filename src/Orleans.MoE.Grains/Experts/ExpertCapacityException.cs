namespace Orleans.MoE.Grains.Experts;

/// <summary>An expert activation's failure to find room for its weights on this silo.</summary>
[GenerateSerializer]
[Alias("moe.ExpertCapacityException")]
public sealed class ExpertCapacityException : Exception
{
    public ExpertCapacityException(string message)
        : base(message)
    {
    }

    public ExpertCapacityException()
    {
    }

    public ExpertCapacityException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
