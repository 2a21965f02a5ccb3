namespace Orleans.MoE.Models.Tokenization;

/// <summary>A tokenizer.json that cannot be loaded exactly; the message names the file and the component.</summary>
public sealed class TokenizerFormatException : Exception
{
    public TokenizerFormatException(string message)
        : base(message)
    {
    }

    public TokenizerFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public TokenizerFormatException()
    {
    }
}
