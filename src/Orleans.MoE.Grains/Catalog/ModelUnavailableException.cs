namespace Orleans.MoE.Grains.Catalog;

/// <summary>This silo has the model configured but its copy could not be loaded (corrupt, truncated, mismatched).</summary>
[GenerateSerializer]
[Alias("moe.ModelUnavailableException")]
public sealed class ModelUnavailableException : Exception
{
    public ModelUnavailableException(string message)
        : base(message)
    {
    }

    public ModelUnavailableException()
    {
    }

    public ModelUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
