using System.Text.Json;

namespace Orleans.MoE.Text.Tokenization;

/// <summary>A piece of normalized text; <c>AtStart</c> when it begins the input (the reference's original offset 0).</summary>
internal readonly record struct PreToken(string Text, bool AtStart);

/// <summary>Splits normalized text into the pieces the model encodes separately.</summary>
internal interface IPreTokenizer
{
    /// <summary>The non-empty pieces of <paramref name="piece"/>.</summary>
    IEnumerable<PreToken> Split(PreToken piece);
}

/// <summary>The pre-tokenizers of tokenizer.json: ByteLevel, Split, Metaspace, Sequence.</summary>
internal static class PreTokenizers
{
    /// <summary>GPT-2's pattern, which ByteLevel applies when use_regex is set.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>prepend_scheme (default "always"); add_prefix_space false requires "never", as the reference.</summary>
    public static string MetaspaceScheme(JsonElement element, TokenizerJson json, string role)
    {
        var scheme = TokenizerJson.OptionalString(element, "prepend_scheme") ?? "always";
        if (scheme is not ("always" or "first" or "never"))
        {
            throw json.Error($"{role}: prepend_scheme '{scheme}' is not one of always, first, never");
        }

        if (element.TryGetProperty("add_prefix_space", out var add) && add.ValueKind == JsonValueKind.False)
        {
            return scheme == "never" ? scheme : throw json.Error($"{role}: add_prefix_space does not match declared prepend_scheme");
        }

        return scheme;
    }

    public static IPreTokenizer? Create(JsonElement element, TokenizerJson json)
    {
        if (element.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            return null;
        }

        var type = json.Type(element, "pre_tokenizer");
        return type switch
        {
            "Sequence" => new SequencePreTokenizer(json.Array(element, "pretokenizers", "pre_tokenizer Sequence").Select(e => Create(e, json) ?? throw json.Error("pre_tokenizer Sequence: null step")).ToArray()),
            "ByteLevel" => new ByteLevelPreTokenizer(
                TokenizerJson.Flag(element, "add_prefix_space", true),
                TokenizerJson.Flag(element, "use_regex", true) ? new CodePointRegex(Gpt2Pattern, json.Source, "pre_tokenizer ByteLevel") : null),
            "Split" => new SplitPreTokenizer(
                TextPattern.Create(element, json, "pre_tokenizer Split"),
                SplitBehavior.Parse(json.String(element, "behavior", "pre_tokenizer Split"), json),
                TokenizerJson.Flag(element, "invert", false)),
            "Metaspace" => MetaspacePreTokenizer.Create(element, json),
            _ => throw json.Unsupported("pre_tokenizer", type),
        };
    }

    /// <summary>The pieces of <paramref name="piece"/> that <paramref name="segments"/> keeps, empty ones dropped.</summary>
    private static IEnumerable<PreToken> Pieces(PreToken piece, List<(int Start, int End, bool Remove)> segments)
    {
        foreach (var (start, end, remove) in segments)
        {
            if (!remove && end > start)
            {
                yield return new PreToken(piece.Text[start..end], piece.AtStart && start == 0);
            }
        }
    }

    private sealed class SequencePreTokenizer(IPreTokenizer[] steps) : IPreTokenizer
    {
        public IEnumerable<PreToken> Split(PreToken piece) =>
            steps.Aggregate((IEnumerable<PreToken>)[piece], (pieces, step) => pieces.SelectMany(step.Split));
    }

    /// <summary>Optionally prefixes a space and splits by GPT-2's pattern, then maps each piece's UTF-8 bytes to the byte-level alphabet.</summary>
    private sealed class ByteLevelPreTokenizer(bool addPrefixSpace, CodePointRegex? regex) : IPreTokenizer
    {
        public IEnumerable<PreToken> Split(PreToken piece)
        {
            var text = piece.Text;
            if (addPrefixSpace && text.Length > 0 && text[0] != ' ')
            {
                piece = piece with { Text = " " + text };
            }

            var pieces = regex is null ? [piece] : Pieces(piece, SplitBehavior.Apply(regex.Segments(piece.Text), SplitBehavior.Isolated));
            return pieces.Where(p => p.Text.Length > 0).Select(p => p with { Text = ByteLevelAlphabet.Encode(p.Text) });
        }
    }

    private sealed class SplitPreTokenizer(TextPattern pattern, string behavior, bool invert) : IPreTokenizer
    {
        public IEnumerable<PreToken> Split(PreToken piece) => Pieces(piece, SplitBehavior.Apply(pattern.Segments(piece.Text, invert), behavior));
    }

    /// <summary>
    /// SentencePiece's whitespace handling: spaces become the replacement character, which is
    /// prepended to every piece ("always") or only at the start of the input ("first"); with split,
    /// each replacement character starts a new piece.
    /// </summary>
    private sealed class MetaspacePreTokenizer(string replacement, string prependScheme, bool split) : IPreTokenizer
    {
        public static MetaspacePreTokenizer Create(JsonElement element, TokenizerJson json)
        {
            var replacement = json.String(element, "replacement", "pre_tokenizer Metaspace");
            if (replacement.EnumerateRunes().Count() != 1)
            {
                throw json.Error($"pre_tokenizer Metaspace: replacement '{replacement}' must be one character");
            }

            return new MetaspacePreTokenizer(replacement, MetaspaceScheme(element, json, "pre_tokenizer Metaspace"), TokenizerJson.Flag(element, "split", true));
        }

        public IEnumerable<PreToken> Split(PreToken piece)
        {
            var text = piece.Text.Replace(" ", replacement, StringComparison.Ordinal);
            var prepend = prependScheme == "always" || (prependScheme == "first" && piece.AtStart);
            if (prepend && text.Length > 0 && !text.StartsWith(replacement, StringComparison.Ordinal))
            {
                text = replacement + text;
            }

            piece = piece with { Text = text };
            if (!split)
            {
                return text.Length > 0 ? [piece] : [];
            }

            var matches = new List<(int Start, int End, bool IsMatch)>();
            var previous = 0;
            for (var i = text.IndexOf(replacement, StringComparison.Ordinal); i >= 0; i = text.IndexOf(replacement, i + replacement.Length, StringComparison.Ordinal))
            {
                if (i > previous)
                {
                    matches.Add((previous, i, false));
                }

                matches.Add((i, i + replacement.Length, true));
                previous = i + replacement.Length;
            }

            if (previous < text.Length)
            {
                matches.Add((previous, text.Length, false));
            }

            return Pieces(piece, SplitBehavior.Apply(matches, SplitBehavior.MergedWithNext));
        }
    }
}
