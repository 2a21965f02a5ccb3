namespace Orleans.MoE.Text.Tokenization;

/// <summary>
/// A tokenizer.json that cannot be loaded exactly, or a tokenizer_config.json that cannot be read; the message names
/// the file and the component or field.
/// </summary>
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
