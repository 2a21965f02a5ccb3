namespace Orleans.MoE.Text.Chat;

/// <summary>
/// The special tokens a chat template sees as <c>bos_token</c>, <c>eos_token</c>, <c>unk_token</c> and
/// <c>pad_token</c>; a null token is undefined in the template, as in transformers.
/// </summary>
public sealed record ChatSpecialTokens(string? BosToken = null, string? EosToken = null, string? UnkToken = null, string? PadToken = null)
{
    /// <summary>No special tokens.</summary>
    public static ChatSpecialTokens None { get; } = new();
}
