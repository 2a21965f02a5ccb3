using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Orleans.MoE.Text.Tokenization;

/// <summary>Turns token strings back into text; each step maps the list of token strings to a new list, as the reference's decode_chain.</summary>
internal interface IDecoder
{
    List<string> Decode(List<string> tokens);
}

/// <summary>The decoders of tokenizer.json: ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace, BPEDecoder, Sequence.</summary>
internal static class Decoders
{
    public static IDecoder? Create(JsonElement element, TokenizerJson json)
    {
        if (element.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            return null;
        }

        var type = json.Type(element, "decoder");
        return type switch
        {
            "Sequence" => new SequenceDecoder(json.Array(element, "decoders", "decoder Sequence").Select(e => Create(e, json) ?? throw json.Error("decoder Sequence: null step")).ToArray()),
            "ByteLevel" => new ByteLevelDecoder(),
            "ByteFallback" => new ByteFallbackDecoder(),
            "Fuse" => new FuseDecoder(),
            "Replace" => new ReplaceDecoder(TextPattern.Create(element, json, "decoder Replace"), json.String(element, "content", "decoder Replace")),
            "Strip" => new StripDecoder(
                SingleCharacter(json.String(element, "content", "decoder Strip"), json, "decoder Strip: content"),
                TokenizerJson.Integer(element, "start", 0),
                TokenizerJson.Integer(element, "stop", 0)),
            "Metaspace" => new MetaspaceDecoder(
                SingleCharacter(json.String(element, "replacement", "decoder Metaspace"), json, "decoder Metaspace: replacement"),
                PreTokenizers.MetaspaceScheme(element, json, "decoder Metaspace") != "never"),
            "BPEDecoder" => new BpeDecoder(TokenizerJson.OptionalString(element, "suffix") ?? "</w>"),
            _ => throw json.Unsupported("decoder", type),
        };
    }

    private static string SingleCharacter(string value, TokenizerJson json, string role) =>
        value.EnumerateRunes().Count() == 1 ? value : throw json.Error($"{role} '{value}' must be one character");

    private sealed class SequenceDecoder(IDecoder[] steps) : IDecoder
    {
        public List<string> Decode(List<string> tokens) => steps.Aggregate(tokens, (t, step) => step.Decode(t));
    }

    /// <summary>All tokens' byte-level characters back to bytes (a token outside the alphabet as its UTF-8), decoded as one UTF-8 string.</summary>
    private sealed class ByteLevelDecoder : IDecoder
    {
        public List<string> Decode(List<string> tokens)
        {
            var bytes = new List<byte>();
            foreach (var token in tokens)
            {
                var start = bytes.Count;
                foreach (var c in token)
                {
                    if (!ByteLevelAlphabet.TryToByte(c, out var b))
                    {
                        bytes.RemoveRange(start, bytes.Count - start);
                        bytes.AddRange(Encoding.UTF8.GetBytes(token));
                        break;
                    }

                    bytes.Add(b);
                }
            }

            return [Encoding.UTF8.GetString([.. bytes])];
        }
    }

    /// <summary>Runs of &lt;0xXX&gt; tokens become their UTF-8 text, or one U+FFFD per byte when the run is not valid UTF-8.</summary>
    private sealed class ByteFallbackDecoder : IDecoder
    {
        private static readonly UTF8Encoding s_strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

        public List<string> Decode(List<string> tokens)
        {
            var result = new List<string>(tokens.Count);
            var pending = new List<byte>();
            foreach (var token in tokens)
            {
                if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
                    && byte.TryParse(token.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var b))
                {
                    pending.Add(b);
                    continue;
                }

                Flush(result, pending);
                result.Add(token);
            }

            Flush(result, pending);
            return result;
        }

        private static void Flush(List<string> result, List<byte> pending)
        {
            if (pending.Count == 0)
            {
                return;
            }

            try
            {
                result.Add(s_strict.GetString([.. pending]));
            }
            catch (DecoderFallbackException)
            {
                result.AddRange(Enumerable.Repeat("\uFFFD", pending.Count));
            }

            pending.Clear();
        }
    }

    private sealed class FuseDecoder : IDecoder
    {
        public List<string> Decode(List<string> tokens) => [string.Concat(tokens)];
    }

    private sealed class ReplaceDecoder(TextPattern pattern, string content) : IDecoder
    {
        public List<string> Decode(List<string> tokens) => tokens.Select(token =>
        {
            var result = new StringBuilder(token.Length);
            foreach (var (start, end, isMatch) in pattern.Segments(token))
            {
                if (isMatch)
                {
                    result.Append(content);
                }
                else
                {
                    result.Append(token, start, end - start);
                }
            }

            return result.ToString();
        }).ToList();
    }

    /// <summary>Removes up to <c>start</c> leading and <c>stop</c> trailing copies of a character from each token.</summary>
    private sealed class StripDecoder(string content, int start, int stop) : IDecoder
    {
        public List<string> Decode(List<string> tokens) => tokens.Select(token =>
        {
            var runes = token.EnumerateRunes().Select(r => r.ToString()).ToList();
            var from = 0;
            while (from < start && from < runes.Count && runes[from] == content)
            {
                from++;
            }

            var to = runes.Count;
            while (runes.Count - to < stop && to > from && runes[to - 1] == content)
            {
                to--;
            }

            return string.Concat(runes.Skip(from).Take(to - from));
        }).ToList();
    }

    /// <summary>The replacement character becomes a space; in the first token it is dropped unless the prepend scheme is "never".</summary>
    private sealed class MetaspaceDecoder(string replacement, bool dropInFirstToken) : IDecoder
    {
        public List<string> Decode(List<string> tokens) => tokens.Select((token, i) =>
            token.Replace(replacement, i == 0 && dropInFirstToken ? "" : " ", StringComparison.Ordinal)).ToList();
    }

    /// <summary>The end-of-word suffix becomes a space (nothing in the last token).</summary>
    private sealed class BpeDecoder(string suffix) : IDecoder
    {
        public List<string> Decode(List<string> tokens) => tokens.Select((token, i) =>
            suffix.Length == 0 ? token : token.Replace(suffix, i == tokens.Count - 1 ? "" : " ", StringComparison.Ordinal)).ToList();
    }
}
