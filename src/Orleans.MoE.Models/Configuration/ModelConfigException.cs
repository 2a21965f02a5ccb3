namespace Orleans.MoE.Models.Configuration;

/// <summary>A config.json that cannot describe a model this project serves; the message names the file and field.</summary>
public sealed class ModelConfigException : Exception
{
    public ModelConfigException(string message)
        : base(message)
    {
    }

    public ModelConfigException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public ModelConfigException()
    {
    }
}
