namespace Orleans.MoE.Grains.Catalog;

/// <summary>The request named a model no silo of the mesh serves.</summary>
[GenerateSerializer]
[Alias("moe.UnknownModelException")]
public sealed class UnknownModelException : Exception
{
    public UnknownModelException(string model, IEnumerable<string> known)
        : base($"unknown model '{model}'; this mesh serves: {string.Join(", ", known.DefaultIfEmpty("(none)"))}")
    {
    }

    public UnknownModelException(string message)
        : base(message)
    {
    }

    public UnknownModelException()
    {
    }

    public UnknownModelException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
