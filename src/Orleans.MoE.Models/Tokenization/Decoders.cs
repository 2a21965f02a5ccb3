using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Orleans.MoE.Models.Tokenization;

/// <summary>Turns token strings back into text; each step maps the list of token strings to a new list, as the reference's decode_chain.</summary>
internal interface IDecoder
{
    List<string> Decode(List<string> tokens);
}

internal static class Decoders
{
    public static IDecoder? Create(JsonElement element, TokenizerJson json)
    {
        if (element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        var type = json.Type(element, "decoder");
        return type switch
        {
            "Sequence" => new SequenceDecoder(json.Array(element, "decoders", "decoder Sequence").Select(e => Create(e, json)!).ToArray()),
            "ByteLevel" => new ByteLevelDecoder(),
            "ByteFallback" => new ByteFallbackDecoder(),
            "Fuse" => new FuseDecoder(),
            "Replace" => ReplaceDecoder(element, json),
            "Strip" => new StripDecoder(json.String(element, "content", "decoder Strip"), TokenizerJson.Integer(element, "start", 0), TokenizerJson.Integer(element, "stop", 0)),
            "Metaspace" => new MetaspaceDecoder(
                json.String(element, "replacement", "decoder Metaspace"),
                (TokenizerJson.OptionalString(element, "prepend_scheme") ?? (TokenizerJson.Flag(element, "add_prefix_space", true) ? "always" : "never")) != "never"),
            _ => throw json.Unsupported("decoder", type),
        };
    }

    private static MapDecoder ReplaceDecoder(JsonElement element, TokenizerJson json)
    {
        var (pattern, isRegex) = json.Pattern(element, "decoder Replace");
        if (isRegex)
        {
            throw json.Error("decoder Replace with a regex pattern is not supported");
        }

        var content = json.String(element, "content", "decoder Replace");
        return new MapDecoder(t => t.Replace(pattern, content, StringComparison.Ordinal));
    }

    private sealed class SequenceDecoder(IDecoder[] steps) : IDecoder
    {
        public List<string> Decode(List<string> tokens) => steps.Aggregate(tokens, (t, step) => step.Decode(t));
    }

    private sealed class MapDecoder(Func<string, string> map) : IDecoder
    {
        public List<string> Decode(List<string> tokens) => tokens.Select(map).ToList();
    }

    /// <summary>All tokens' byte-level characters back to bytes (tokens outside the alphabet as their UTF-8), decoded as one UTF-8 string.</summary>
    private sealed class ByteLevelDecoder : IDecoder
    {
        public List<string> Decode(List<string> tokens)
        {
            var bytes = new List<byte>();
            foreach (var token in tokens)
            {
                var mapped = new List<byte>(token.Length);
                var inAlphabet = true;
                foreach (var c in token)
                {
                    if (!ByteLevelAlphabet.TryToByte(c, out var b))
                    {
                        inAlphabet = false;
                        break;
                    }

                    mapped.Add(b);
                }

                bytes.AddRange(inAlphabet ? mapped : Encoding.UTF8.GetBytes(token));
            }

            return [Encoding.UTF8.GetString([.. bytes])];
        }
    }

    /// <summary>Runs of &lt;0xXX&gt; tokens become their UTF-8 text, or one U+FFFD per byte when invalid.</summary>
    private sealed class ByteFallbackDecoder : IDecoder
    {
        private static readonly UTF8Encoding s_strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

        public List<string> Decode(List<string> tokens)
        {
            var result = new List<string>();
            var pending = new List<byte>();
            foreach (var token in tokens)
            {
                if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
                    && byte.TryParse(token.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var b))
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

    /// <summary>Removes up to <c>start</c> leading and <c>stop</c> trailing copies of a character from each token.</summary>
    private sealed class StripDecoder(string content, int start, int stop) : IDecoder
    {
        public List<string> Decode(List<string> tokens) => tokens.Select(token =>
        {
            var c = content.Length == 1 ? content[0] : throw new TokenizerFormatException($"decoder Strip content must be one character, not '{content}'");
            var from = 0;
            while (from < start && from < token.Length && token[from] == c)
            {
                from++;
            }

            var to = token.Length;
            while (token.Length - to < stop && to > from && token[to - 1] == c)
            {
                to--;
            }

            return token[from..to];
        }).ToList();
    }

    private sealed class MetaspaceDecoder(string replacement, bool stripFirstSpace) : IDecoder
    {
        public List<string> Decode(List<string> tokens) => tokens.Select((token, i) =>
        {
            var text = token.Replace(replacement, " ", StringComparison.Ordinal);
            return i == 0 && stripFirstSpace && text.StartsWith(' ') ? text[1..] : text;
        }).ToList();
    }
}
