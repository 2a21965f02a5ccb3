using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace Orleans.MoE.Text.Tokenization;

/// <summary>
/// Unicode normalization forms C, D, KC and KD (UAX #15) on the reference's tables
/// (<see cref="UnicodeNormalizationData"/>): full decomposition, canonical reordering, canonical
/// composition; Hangul syllables algorithmically.
/// </summary>
internal static class UnicodeNormalization
{
    private const int HangulBase = 0xAC00;
    private const int HangulCount = 11172;
    private const int LeadBase = 0x1100;
    private const int VowelBase = 0x1161;
    private const int TrailBase = 0x11A7;
    private const int VowelCount = 21;
    private const int TrailCount = 28;

    private static readonly Lazy<Tables> s_tables = new(Tables.Load);

    /// <param name="compatibility">KC/KD rather than C/D.</param>
    /// <param name="compose">C/KC rather than D/KD.</param>
    public static string Normalize(string text, bool compatibility, bool compose)
    {
        if (IsAscii(text))
        {
            return text;
        }

        var tables = s_tables.Value;
        var buffer = new List<int>(text.Length + 8);
        foreach (var codePoint in CodePoints(text))
        {
            tables.Decompose(codePoint, compatibility, buffer);
        }

        tables.Reorder(buffer);
        if (compose)
        {
            tables.Compose(buffer);
        }

        var result = new StringBuilder(buffer.Count);
        foreach (var codePoint in buffer)
        {
            if (codePoint > 0xFFFF)
            {
                result.Append(char.ConvertFromUtf32(codePoint));
            }
            else
            {
                result.Append((char)codePoint);
            }
        }

        return result.ToString();
    }

    private static bool IsAscii(string text)
    {
        foreach (var c in text)
        {
            if (c >= 0x80)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The code points of <paramref name="text"/>; a lone surrogate stands for itself.</summary>
    private static IEnumerable<int> CodePoints(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                yield return char.ConvertToUtf32(text[i], text[i + 1]);
                i++;
            }
            else
            {
                yield return text[i];
            }
        }
    }

    private sealed class Tables
    {
        private readonly Dictionary<int, int[]> _canonical = [];
        private readonly Dictionary<int, int[]> _compatibility = [];
        private readonly Dictionary<int, byte> _combiningClass = [];
        private readonly Dictionary<long, int> _composites = [];

        public static Tables Load()
        {
            var tables = new Tables();
            using var compressed = new MemoryStream(Convert.FromBase64String(UnicodeNormalizationData.Compressed));
            using var zlib = new ZLibStream(compressed, CompressionMode.Decompress);
            using var reader = new StreamReader(zlib, Encoding.ASCII);
            while (reader.ReadLine() is { } line)
            {
                var fields = line[1..].Split(' ');
                var values = fields.Select(f => int.Parse(f, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray();
                switch (line[0])
                {
                    case 'D':
                        tables._canonical[values[0]] = values[1..];
                        break;
                    case 'K':
                        tables._compatibility[values[0]] = values[1..];
                        break;
                    case 'C':
                        tables._combiningClass[values[0]] = byte.Parse(fields[1], CultureInfo.InvariantCulture);
                        break;
                    case 'P':
                        tables._composites[Pair(values[0], values[1])] = values[2];
                        break;
                    default:
                        throw new InvalidDataException($"normalization data: unexpected line '{line}'");
                }
            }

            return tables;
        }

        public void Decompose(int codePoint, bool compatibility, List<int> output)
        {
            if (codePoint is >= HangulBase and < HangulBase + HangulCount)
            {
                var index = codePoint - HangulBase;
                output.Add(LeadBase + (index / (VowelCount * TrailCount)));
                output.Add(VowelBase + (index % (VowelCount * TrailCount) / TrailCount));
                if (index % TrailCount != 0)
                {
                    output.Add(TrailBase + (index % TrailCount));
                }

                return;
            }

            if ((compatibility && _compatibility.TryGetValue(codePoint, out var mapping)) || _canonical.TryGetValue(codePoint, out mapping))
            {
                output.AddRange(mapping);
            }
            else
            {
                output.Add(codePoint);
            }
        }

        /// <summary>Stable-sorts each run of non-starters by combining class.</summary>
        public void Reorder(List<int> buffer)
        {
            for (var i = 1; i < buffer.Count; i++)
            {
                var current = buffer[i];
                var currentClass = CombiningClass(current);
                if (currentClass == 0)
                {
                    continue;
                }

                var j = i;
                while (j > 0 && CombiningClass(buffer[j - 1]) > currentClass)
                {
                    buffer[j] = buffer[j - 1];
                    j--;
                }

                buffer[j] = current;
            }
        }

        /// <summary>Canonical composition of a reordered decomposition, in place.</summary>
        public void Compose(List<int> buffer)
        {
            if (buffer.Count < 2)
            {
                return;
            }

            var starterIndex = 0;
            var starter = buffer[0];
            var lastClass = CombiningClass(starter) == 0 ? 0 : 256;
            var write = 1;
            for (var read = 1; read < buffer.Count; read++)
            {
                var c = buffer[read];
                var cClass = CombiningClass(c);
                var composite = lastClass == 256 ? -1 : Composite(starter, c);
                if (composite >= 0 && (lastClass < cClass || lastClass == 0))
                {
                    buffer[starterIndex] = composite;
                    starter = composite;
                    continue;
                }

                if (cClass == 0)
                {
                    starterIndex = write;
                    starter = c;
                }

                lastClass = cClass;
                buffer[write++] = c;
            }

            buffer.RemoveRange(write, buffer.Count - write);
        }

        private int Composite(int first, int second)
        {
            if (first is >= LeadBase and < LeadBase + 19 && second is >= VowelBase and < VowelBase + VowelCount)
            {
                return HangulBase + ((((first - LeadBase) * VowelCount) + (second - VowelBase)) * TrailCount);
            }

            if (first is >= HangulBase and < HangulBase + HangulCount && (first - HangulBase) % TrailCount == 0
                && second is > TrailBase and < TrailBase + TrailCount)
            {
                return first + (second - TrailBase);
            }

            return _composites.TryGetValue(Pair(first, second), out var composite) ? composite : -1;
        }

        private byte CombiningClass(int codePoint) => _combiningClass.GetValueOrDefault(codePoint);

        private static long Pair(int first, int second) => ((long)first << 21) | (uint)second;
    }
}
