using System.Text.Json;

namespace Orleans.MoE.Models.Tokenization;

/// <summary>A token added to the vocabulary outside the model (special tokens, chat markers).</summary>
internal sealed record AddedToken(int Id, string Content, bool Special, bool SingleWord, bool LeftStrip, bool RightStrip, bool Normalized);

/// <summary>
/// Finds added tokens in text before anything else runs, so "&lt;s&gt;" in a prompt becomes the token,
/// not its characters. Longest match first; lstrip/rstrip absorb whitespace beside the token,
/// single_word requires word boundaries.
/// </summary>
internal sealed class AddedVocabulary
{
    private readonly AddedToken[] _raw;
    private readonly AddedToken[] _normalized;

    public AddedVocabulary(IEnumerable<AddedToken> tokens)
    {
        Tokens = tokens.ToArray();
        var byLength = Tokens.Where(t => t.Content.Length > 0).OrderByDescending(t => t.Content.Length).ToArray();
        _raw = byLength.Where(t => !t.Normalized).ToArray();
        _normalized = byLength.Where(t => t.Normalized).ToArray();
    }

    public IReadOnlyList<AddedToken> Tokens { get; }

    public static AddedVocabulary Create(JsonElement root, TokenizerJson json)
    {
        if (!root.TryGetProperty("added_tokens", out var added) || added.ValueKind != JsonValueKind.Array)
        {
            return new AddedVocabulary([]);
        }

        return new AddedVocabulary(added.EnumerateArray().Select(t => new AddedToken(
            t.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.Number ? id.GetInt32() : throw json.Error($"added token {t.GetRawText()} has no id"),
            json.String(t, "content", "added token"),
            TokenizerJson.Flag(t, "special", false),
            TokenizerJson.Flag(t, "single_word", false),
            TokenizerJson.Flag(t, "lstrip", false),
            TokenizerJson.Flag(t, "rstrip", false),
            TokenizerJson.Flag(t, "normalized", false))));
    }

    /// <summary>
    /// The text as alternating plain segments (Token null) and added tokens: those matched on the raw
    /// text (normalized: false), or, with <paramref name="normalizedText"/>, those matched after
    /// normalization (normalized: true).
    /// </summary>
    public List<(string Text, AddedToken? Token)> Split(string text, bool normalizedText = false)
    {
        var candidates = normalizedText ? _normalized : _raw;
        var result = new List<(string, AddedToken?)>();
        var plainStart = 0;
        var i = 0;
        while (i < text.Length)
        {
            var match = candidates.FirstOrDefault(t => string.CompareOrdinal(text, i, t.Content, 0, t.Content.Length) == 0 && WordBoundaryOk(text, i, t));
            if (match is null)
            {
                i++;
                continue;
            }

            var start = i;
            var end = i + match.Content.Length;
            if (match.LeftStrip)
            {
                while (start > plainStart && char.IsWhiteSpace(text[start - 1]))
                {
                    start--;
                }
            }

            if (match.RightStrip)
            {
                while (end < text.Length && char.IsWhiteSpace(text[end]))
                {
                    end++;
                }
            }

            if (start > plainStart)
            {
                result.Add((text[plainStart..start], null));
            }

            result.Add((text[start..end], match));
            plainStart = i = end;
        }

        if (plainStart < text.Length)
        {
            result.Add((text[plainStart..], null));
        }

        return result;
    }

    private static bool WordBoundaryOk(string text, int index, AddedToken token)
    {
        if (!token.SingleWord)
        {
            return true;
        }

        var end = index + token.Content.Length;
        return (index == 0 || !char.IsLetterOrDigit(text[index - 1])) && (end == text.Length || !char.IsLetterOrDigit(text[end]));
    }
}
