using System.Text;
using System.Text.Json;

namespace Orleans.MoE.Text.Tokenization;

/// <summary>Rewrites a piece of text before pre-tokenization.</summary>
internal interface INormalizer
{
    string Normalize(string text);
}

/// <summary>The normalizers of tokenizer.json: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, Sequence.</summary>
internal static class Normalizers
{
    public static INormalizer? Create(JsonElement element, TokenizerJson json)
    {
        if (element.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            return null;
        }

        var type = json.Type(element, "normalizer");
        return type switch
        {
            "Sequence" => new SequenceNormalizer(json.Array(element, "normalizers", "normalizer Sequence").Select(e => Create(e, json) ?? throw json.Error("normalizer Sequence: null step")).ToArray()),
            "NFC" => new UnicodeNormalizer(Compatibility: false, Compose: true),
            "NFD" => new UnicodeNormalizer(Compatibility: false, Compose: false),
            "NFKC" => new UnicodeNormalizer(Compatibility: true, Compose: true),
            "NFKD" => new UnicodeNormalizer(Compatibility: true, Compose: false),
            "Lowercase" => new LowercaseNormalizer(),
            "Prepend" => new PrependNormalizer(json.String(element, "prepend", "normalizer Prepend")),
            "Replace" => new ReplaceNormalizer(TextPattern.Create(element, json, "normalizer Replace"), json.String(element, "content", "normalizer Replace")),
            "Strip" => new StripNormalizer(TokenizerJson.Flag(element, "strip_left", false), TokenizerJson.Flag(element, "strip_right", false)),
            _ => throw json.Unsupported("normalizer", type),
        };
    }

    private sealed class SequenceNormalizer(INormalizer[] normalizers) : INormalizer
    {
        public string Normalize(string text) => normalizers.Aggregate(text, (t, n) => n.Normalize(t));
    }

    private sealed record UnicodeNormalizer(bool Compatibility, bool Compose) : INormalizer
    {
        public string Normalize(string text) => UnicodeNormalization.Normalize(text, Compatibility, Compose);
    }

    /// <summary>Each character's full lowercase mapping (İ becomes i + U+0307, as Rust's char::to_lowercase).</summary>
    private sealed class LowercaseNormalizer : INormalizer
    {
        public string Normalize(string text)
        {
            var result = new StringBuilder(text.Length);
            foreach (var rune in text.EnumerateRunes())
            {
                if (rune.Value == 0x130)
                {
                    result.Append("i\u0307");
                }
                else
                {
                    result.Append(Rune.ToLowerInvariant(rune).ToString());
                }
            }

            return result.ToString();
        }
    }

    /// <summary>Prepends a string to non-empty text (SentencePiece's "▁").</summary>
    private sealed class PrependNormalizer(string prefix) : INormalizer
    {
        public string Normalize(string text) => text.Length == 0 ? text : prefix + text;
    }

    /// <summary>Replaces every match of a pattern (empty matches included) by a fixed string.</summary>
    private sealed class ReplaceNormalizer(TextPattern pattern, string content) : INormalizer
    {
        public string Normalize(string text)
        {
            var result = new StringBuilder(text.Length);
            foreach (var (start, end, isMatch) in pattern.Segments(text))
            {
                if (isMatch)
                {
                    result.Append(content);
                }
                else
                {
                    result.Append(text, start, end - start);
                }
            }

            return result.ToString();
        }
    }

    /// <summary>Removes leading and/or trailing whitespace.</summary>
    private sealed class StripNormalizer(bool left, bool right) : INormalizer
    {
        public string Normalize(string text) => (left, right) switch
        {
            (true, true) => text.Trim(),
            (true, false) => text.TrimStart(),
            (false, true) => text.TrimEnd(),
            _ => text,
        };
    }
}
