using System.Text.Json;

namespace Orleans.MoE.Models.Tokenization;

/// <summary>Splits normalized text into the pieces the model encodes separately.</summary>
internal interface IPreTokenizer
{
    /// <param name="firstSegment">Whether the text starts the input (not a part after an added token).</param>
    IEnumerable<string> Split(string text, bool firstSegment);
}

internal static class PreTokenizers
{
    /// <summary>GPT-2's pattern, which ByteLevel applies when use_regex is set.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    public static IPreTokenizer? Create(JsonElement element, TokenizerJson json)
    {
        if (element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        var type = json.Type(element, "pre_tokenizer");
        return type switch
        {
            "Sequence" => new SequencePreTokenizer(json.Array(element, "pretokenizers", "pre_tokenizer Sequence").Select(e => Create(e, json)!).ToArray()),
            "ByteLevel" => new ByteLevelPreTokenizer(
                TokenizerJson.Flag(element, "add_prefix_space", true),
                TokenizerJson.Flag(element, "use_regex", true) ? new CodePointRegex(Gpt2Pattern, json.Source) : null),
            "Split" => SplitPreTokenizer.Create(element, json),
            "Metaspace" => new MetaspacePreTokenizer(
                json.String(element, "replacement", "pre_tokenizer Metaspace"),
                TokenizerJson.OptionalString(element, "prepend_scheme") ?? (TokenizerJson.Flag(element, "add_prefix_space", true) ? "always" : "never"),
                TokenizerJson.Flag(element, "split", true)),
            _ => throw json.Unsupported("pre_tokenizer", type),
        };
    }

    /// <summary>Splits text around regex matches the way the reference's SplitDelimiterBehavior does.</summary>
    public static IEnumerable<string> SplitAround(string text, List<(int Start, int End)> matches, string behavior)
    {
        // Pieces alternate: gaps (not matched) and matches.
        var pieces = new List<(string Text, bool IsMatch)>();
        var last = 0;
        foreach (var (start, end) in matches)
        {
            if (start > last)
            {
                pieces.Add((text[last..start], false));
            }

            pieces.Add((text[start..end], true));
            last = end;
        }

        if (last < text.Length)
        {
            pieces.Add((text[last..], false));
        }

        switch (behavior)
        {
            case "Isolated":
                return pieces.Select(p => p.Text);
            case "Removed":
                return pieces.Where(p => !p.IsMatch).Select(p => p.Text);
            case "MergedWithPrevious":
                return Merge(pieces, withPrevious: true);
            case "MergedWithNext":
                return Merge(pieces, withPrevious: false);
            case "Contiguous":
                var contiguous = new List<string>();
                for (var i = 0; i < pieces.Count; i++)
                {
                    if (pieces[i].IsMatch && i > 0 && pieces[i - 1].IsMatch)
                    {
                        contiguous[^1] += pieces[i].Text;
                    }
                    else
                    {
                        contiguous.Add(pieces[i].Text);
                    }
                }

                return contiguous;
            default:
                throw new TokenizerFormatException($"split behavior '{behavior}' is not supported");
        }
    }

    private static List<string> Merge(List<(string Text, bool IsMatch)> pieces, bool withPrevious)
    {
        var result = new List<string>();
        var pending = "";
        foreach (var (piece, isMatch) in pieces)
        {
            if (withPrevious)
            {
                if (isMatch && result.Count > 0)
                {
                    result[^1] += piece;
                }
                else
                {
                    result.Add(piece);
                }
            }
            else if (isMatch)
            {
                pending += piece;
            }
            else
            {
                result.Add(pending + piece);
                pending = "";
            }
        }

        if (pending.Length > 0)
        {
            result.Add(pending);
        }

        return result;
    }

    private sealed class SequencePreTokenizer(IPreTokenizer[] steps) : IPreTokenizer
    {
        public IEnumerable<string> Split(string text, bool firstSegment) =>
            steps.Aggregate((IEnumerable<string>)[text], (pieces, step) => pieces.SelectMany((piece, i) => step.Split(piece, firstSegment && i == 0)));
    }

    /// <summary>Optionally splits by GPT-2's pattern, then maps each piece's UTF-8 bytes to the byte-level alphabet.</summary>
    private sealed class ByteLevelPreTokenizer(bool addPrefixSpace, CodePointRegex? regex) : IPreTokenizer
    {
        public IEnumerable<string> Split(string text, bool firstSegment)
        {
            if (addPrefixSpace && text.Length > 0 && !text.StartsWith(' '))
            {
                text = " " + text;
            }

            var pieces = regex is null ? [text] : SplitAround(text, regex.Matches(text), "Isolated");
            return pieces.Where(p => p.Length > 0).Select(ByteLevelAlphabet.Encode);
        }
    }

    private sealed class SplitPreTokenizer(CodePointRegex? regex, string? literal, string behavior, bool invert) : IPreTokenizer
    {
        public static SplitPreTokenizer Create(JsonElement element, TokenizerJson json)
        {
            var (pattern, isRegex) = json.Pattern(element, "pre_tokenizer Split");
            return new SplitPreTokenizer(
                isRegex ? new CodePointRegex(pattern, json.Source) : null,
                isRegex ? null : pattern,
                json.String(element, "behavior", "pre_tokenizer Split"),
                TokenizerJson.Flag(element, "invert", false));
        }

        public IEnumerable<string> Split(string text, bool firstSegment)
        {
            var matches = regex is not null ? regex.Matches(text) : LiteralMatches(text);
            if (invert)
            {
                matches = Gaps(matches, text.Length);
            }

            return SplitAround(text, matches, behavior).Where(p => p.Length > 0);
        }

        private List<(int, int)> LiteralMatches(string text)
        {
            var result = new List<(int, int)>();
            for (var i = text.IndexOf(literal!, StringComparison.Ordinal); i >= 0 && literal!.Length > 0; i = text.IndexOf(literal, i + literal.Length, StringComparison.Ordinal))
            {
                result.Add((i, i + literal.Length));
            }

            return result;
        }

        private static List<(int Start, int End)> Gaps(List<(int Start, int End)> matches, int length)
        {
            var gaps = new List<(int, int)>();
            var last = 0;
            foreach (var (start, end) in matches)
            {
                if (start > last)
                {
                    gaps.Add((last, start));
                }

                last = end;
            }

            if (last < length)
            {
                gaps.Add((last, length));
            }

            return gaps;
        }
    }

    /// <summary>
    /// SentencePiece's whitespace handling: spaces become the replacement character ("▁"), which is
    /// prepended to every segment ("always") or only to the start of the input ("first").
    /// </summary>
    private sealed class MetaspacePreTokenizer(string replacement, string prependScheme, bool split) : IPreTokenizer
    {
        public IEnumerable<string> Split(string text, bool firstSegment)
        {
            text = text.Replace(" ", replacement, StringComparison.Ordinal);
            var prepend = prependScheme == "always" || (prependScheme == "first" && firstSegment);
            if (prepend && !text.StartsWith(replacement, StringComparison.Ordinal))
            {
                text = replacement + text;
            }

            if (!split)
            {
                return [text];
            }

            var pieces = new List<string>();
            var start = 0;
            for (var i = text.IndexOf(replacement, 1, StringComparison.Ordinal); i > 0; i = text.IndexOf(replacement, i + 1, StringComparison.Ordinal))
            {
                pieces.Add(text[start..i]);
                start = i;
            }

            pieces.Add(text[start..]);
            return pieces.Where(p => p.Length > 0);
        }
    }
}
