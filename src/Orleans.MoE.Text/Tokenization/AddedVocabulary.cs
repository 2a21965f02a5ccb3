using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Orleans.MoE.Text.Tokenization;

/// <summary>A token added to the vocabulary outside the model (special tokens, chat markers).</summary>
/// <param name="Pattern">What is matched: the content, or for a normalized token its normalized form.</param>
internal sealed record AddedToken(int Id, string Content, string Pattern, bool Special, bool SingleWord, bool LeftStrip, bool RightStrip, bool Normalized);

/// <summary>
/// The added tokens, found in the text before the model runs, as the reference's AddedVocabulary:
/// tokens with normalized: false are matched in the raw text, those with normalized: true (by their
/// normalized form) in the normalized text; leftmost-longest non-overlapping matches; a single_word
/// match next to a word character is discarded; lstrip/rstrip absorb the whitespace beside a match.
/// Ids are assigned as the reference does on loading: an existing added or model token keeps its
/// id, a new one gets the next id after the model's vocabulary.
/// </summary>
internal sealed class AddedVocabulary
{
    private readonly Dictionary<char, AddedToken[]> _raw;
    private readonly Dictionary<char, AddedToken[]> _normalized;

    private AddedVocabulary(Dictionary<string, int> ids, Dictionary<int, AddedToken> byId, HashSet<string> specialContents)
    {
        Ids = ids;
        ById = byId;
        SpecialContents = specialContents;
        _raw = Index(byId.Values.Where(t => !t.Normalized));
        _normalized = Index(byId.Values.Where(t => t.Normalized));
    }

    /// <summary>Content to id.</summary>
    public IReadOnlyDictionary<string, int> Ids { get; }

    /// <summary>Id to token.</summary>
    public IReadOnlyDictionary<int, AddedToken> ById { get; }

    /// <summary>The contents of the special tokens (decode skips tokens whose string is one of these).</summary>
    public IReadOnlySet<string> SpecialContents { get; }

    public static AddedVocabulary Create(JsonElement root, TokenizerJson json, BytePairEncoding model, INormalizer? normalizer)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        var byId = new Dictionary<int, AddedToken>();
        var specialContents = new HashSet<string>(StringComparer.Ordinal);
        if (!root.TryGetProperty("added_tokens", out var added) || added.ValueKind == JsonValueKind.Null)
        {
            return new AddedVocabulary(ids, byId, specialContents);
        }

        if (added.ValueKind != JsonValueKind.Array)
        {
            throw json.Error("'added_tokens' must be an array");
        }

        var nextId = model.Count;
        foreach (var t in added.EnumerateArray())
        {
            if (t.ValueKind != JsonValueKind.Object)
            {
                throw json.Error($"added token {t.GetRawText()} is not an object");
            }

            var content = json.String(t, "content", "added token");
            var special = TokenizerJson.Flag(t, "special", false);
            var normalized = TokenizerJson.Flag(t, "normalized", !special);
            if (content.Length == 0)
            {
                continue;
            }

            var id = ids.TryGetValue(content, out var existing) ? existing : model.Id(content) ?? nextId++;
            var pattern = normalized && normalizer is not null ? normalizer.Normalize(content) : content;
            ids[content] = id;
            byId[id] = new AddedToken(id, content, pattern, special, TokenizerJson.Flag(t, "single_word", false), TokenizerJson.Flag(t, "lstrip", false), TokenizerJson.Flag(t, "rstrip", false), normalized);
            if (special)
            {
                specialContents.Add(content);
            }
        }

        return new AddedVocabulary(ids, byId, specialContents);
    }

    /// <summary>
    /// The text as pieces: plain text (Token null) and added tokens (with the text they cover,
    /// stripped whitespace included). <paramref name="normalizedText"/> selects the tokens matched
    /// after normalization instead of those matched in the raw text.
    /// </summary>
    public List<(string Text, AddedToken? Token)> Split(string text, bool normalizedText)
    {
        var index = normalizedText ? _normalized : _raw;
        var result = new List<(string, AddedToken?)>();
        if (index.Count == 0)
        {
            result.Add((text, null));
            return result;
        }

        var plainStart = 0;
        var searchFrom = 0;
        while (FindLeftmostLongest(text, searchFrom, index) is var (matchStart, token))
        {
            var start = matchStart;
            var end = matchStart + token.Pattern.Length;
            searchFrom = end;
            if (token.SingleWord && ((start > 0 && IsWordCharacterBefore(text, start)) || (end < text.Length && IsWordCharacterAt(text, end))))
            {
                continue;
            }

            if (token.LeftStrip)
            {
                while (start > plainStart && char.IsWhiteSpace(text[start - 1]))
                {
                    start--;
                }
            }

            if (token.RightStrip)
            {
                while (end < text.Length && char.IsWhiteSpace(text[end]))
                {
                    end++;
                }
            }

            start = Math.Max(start, plainStart);
            if (start > plainStart)
            {
                result.Add((text[plainStart..start], null));
            }

            result.Add((text[start..end], token));
            plainStart = end;
        }

        if (plainStart < text.Length || result.Count == 0)
        {
            result.Add((text[plainStart..], null));
        }

        return result;
    }

    /// <summary>The leftmost match at or after <paramref name="from"/>, the longest of those starting there.</summary>
    private static (int Start, AddedToken Token)? FindLeftmostLongest(string text, int from, Dictionary<char, AddedToken[]> index)
    {
        for (var i = from; i < text.Length; i++)
        {
            if (!index.TryGetValue(text[i], out var candidates))
            {
                continue;
            }

            foreach (var token in candidates)
            {
                if (i + token.Pattern.Length <= text.Length && string.CompareOrdinal(text, i, token.Pattern, 0, token.Pattern.Length) == 0)
                {
                    return (i, token);
                }
            }
        }

        return null;
    }

    /// <summary>Tokens by first character, longest first.</summary>
    private static Dictionary<char, AddedToken[]> Index(IEnumerable<AddedToken> tokens) => tokens
        .Where(t => t.Pattern.Length > 0)
        .GroupBy(t => t.Pattern[0])
        .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Pattern.Length).ToArray());

    private static bool IsWordCharacterBefore(string text, int index) =>
        IsWordCharacter(char.IsLowSurrogate(text[index - 1]) && index >= 2 && char.IsHighSurrogate(text[index - 2])
            ? char.ConvertToUtf32(text[index - 2], text[index - 1])
            : text[index - 1]);

    private static bool IsWordCharacterAt(string text, int index) =>
        IsWordCharacter(Rune.TryGetRuneAt(text, index, out var rune) ? rune.Value : text[index]);

    /// <summary>
    /// Rust regex's Unicode \w: alphabetic, marks, decimal digits, connector punctuation, joiners
    /// (alphabetic approximated by letters, letter numbers and the circled/squared letters).
    /// </summary>
    private static bool IsWordCharacter(int codePoint)
    {
        if (codePoint is 0x200C or 0x200D or (>= 0x24B6 and <= 0x24E9) or (>= 0x1F130 and <= 0x1F149) or (>= 0x1F150 and <= 0x1F169) or (>= 0x1F170 and <= 0x1F189))
        {
            return true;
        }

        return CharUnicodeInfo.GetUnicodeCategory(codePoint) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter or UnicodeCategory.LetterNumber
                or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
                or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.ConnectorPunctuation => true,
            _ => false,
        };
    }
}
