namespace Orleans.MoE.Text.Chat;

/// <summary>
/// One message of a chat conversation as a template sees it: <c>message.role</c>, <c>message.content</c> (plain text)
/// and, when set, <c>message.name</c>.
/// </summary>
public sealed record ChatMessage(string Role, string Content, string? Name = null);
