using System.Text;
using System.Text.Json;

namespace Orleans.MoE.Models.Tokenization;

/// <summary>Rewrites a piece of text before pre-tokenization.</summary>
internal interface INormalizer
{
    string Normalize(string text);
}

internal static class Normalizers
{
    public static INormalizer? Create(JsonElement element, TokenizerJson json)
    {
        if (element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        var type = json.Type(element, "normalizer");
        return type switch
        {
            "Sequence" => new SequenceNormalizer(json.Array(element, "normalizers", "normalizer Sequence").Select(e => Create(e, json)!).ToArray()),
            "NFC" => new UnicodeNormalizer(NormalizationForm.FormC),
            "NFD" => new UnicodeNormalizer(NormalizationForm.FormD),
            "NFKC" => new UnicodeNormalizer(NormalizationForm.FormKC),
            "NFKD" => new UnicodeNormalizer(NormalizationForm.FormKD),
            "Lowercase" => new LowercaseNormalizer(),
            "Prepend" => new PrependNormalizer(json.String(element, "prepend", "normalizer Prepend")),
            "Replace" => ReplaceNormalizer.Create(element, json),
            _ => throw json.Unsupported("normalizer", type),
        };
    }

    private sealed class SequenceNormalizer(INormalizer[] normalizers) : INormalizer
    {
        public string Normalize(string text) => normalizers.Aggregate(text, (t, n) => n.Normalize(t));
    }

    private sealed class UnicodeNormalizer(NormalizationForm form) : INormalizer
    {
        public string Normalize(string text) => text.Normalize(form);
    }

    private sealed class LowercaseNormalizer : INormalizer
    {
        public string Normalize(string text) => text.ToLowerInvariant();
    }

    /// <summary>Prepends a string to non-empty text (SentencePiece's "▁").</summary>
    private sealed class PrependNormalizer(string prefix) : INormalizer
    {
        public string Normalize(string text) => text.Length == 0 ? text : prefix + text;
    }

    private sealed class ReplaceNormalizer(Func<string, string> replace) : INormalizer
    {
        public static ReplaceNormalizer Create(JsonElement element, TokenizerJson json)
        {
            var (pattern, isRegex) = json.Pattern(element, "normalizer Replace");
            var content = json.String(element, "content", "normalizer Replace");
            if (!isRegex)
            {
                return new ReplaceNormalizer(t => t.Replace(pattern, content, StringComparison.Ordinal));
            }

            var regex = new CodePointRegex(pattern, json.Source);
            return new ReplaceNormalizer(t =>
            {
                var result = new StringBuilder();
                var last = 0;
                foreach (var (start, end) in regex.Matches(t))
                {
                    result.Append(t, last, start - last).Append(content);
                    last = end;
                }

                return result.Append(t, last, t.Length - last).ToString();
            });
        }

        public string Normalize(string text) => replace(text);
    }
}
