namespace Orleans.MoE.Text.Tokenization;

/// <summary>
/// Turns prompt text into token ids as the reference tokenizer class does: the tokenizer's own special
/// tokens, plus the BOS token when tokenizer_config.json sets <c>add_bos_token</c> and the post-processor
/// did not add it.
/// </summary>
public sealed class PromptEncoder
{
    private readonly int? _prependedBos;

    private PromptEncoder(Tokenizer tokenizer, int? prependedBos)
    {
        Tokenizer = tokenizer;
        _prependedBos = prependedBos;
    }

    public Tokenizer Tokenizer { get; }

    /// <summary>The encoder for <paramref name="tokenizer"/> configured by tokenizer_config.json's text (null: none).</summary>
    public static PromptEncoder Create(Tokenizer tokenizer, string? tokenizerConfigJson, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (tokenizerConfigJson is null)
        {
            return new PromptEncoder(tokenizer, null);
        }

        var config = TokenizerConfigFile.Parse(tokenizerConfigJson, sourceName);
        if (config.FlagField("add_bos_token") != true)
        {
            return new PromptEncoder(tokenizer, null);
        }

        var bos = config.SpecialToken("bos_token") ?? throw config.Invalid("bos_token", "must name a token when add_bos_token is set");
        return new PromptEncoder(tokenizer, tokenizer.TokenToId(bos) ?? throw config.Invalid("bos_token", $"'{bos}' is not in the tokenizer's vocabulary"));
    }

    /// <summary>The encoder for a model directory's tokenizer.json and tokenizer_config.json (when present).</summary>
    public static PromptEncoder Load(string directory, Tokenizer tokenizer)
    {
        var path = Path.Combine(directory, "tokenizer_config.json");
        return Create(tokenizer, File.Exists(path) ? File.ReadAllText(path) : null, path);
    }

    public IReadOnlyList<int> Encode(string prompt)
    {
        var ids = Tokenizer.Encode(prompt, addSpecialTokens: true);
        return _prependedBos is { } bos && (ids.Count == 0 || ids[0] != bos) ? [bos, .. ids] : ids;
    }
}
