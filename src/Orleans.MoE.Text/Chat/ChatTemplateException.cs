namespace Orleans.MoE.Text.Chat;

/// <summary>
/// A chat template that cannot be parsed (the message names the source, line and column) or that failed while
/// rendering. A template's own <c>raise_exception(msg)</c> produces exactly <c>msg</c> as the message, with
/// <see cref="RaisedByTemplate"/> set, so a front end can return it to the client as a bad request.
/// </summary>
public sealed class ChatTemplateException : Exception
{
    public ChatTemplateException(string message)
        : base(message)
    {
    }

    public ChatTemplateException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public ChatTemplateException()
    {
    }

    internal ChatTemplateException(string message, bool raisedByTemplate)
        : base(message)
    {
        RaisedByTemplate = raisedByTemplate;
    }

    /// <summary>Whether the template itself rejected the conversation with <c>raise_exception</c>.</summary>
    public bool RaisedByTemplate { get; }
}
