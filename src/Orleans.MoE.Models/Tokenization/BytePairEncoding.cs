using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;

namespace Orleans.MoE.Models.Tokenization;

/// <summary>
/// The BPE model: a word becomes its characters (or, with byte_fallback, the &lt;0xXX&gt; tokens of
/// characters missing from the vocabulary, else the unknown token, fused when fuse_unk), then the
/// adjacent pair of lowest merge rank is merged, leftmost first, until no pair has a rank.
/// Results are cached per word.
/// </summary>
internal sealed class BytePairEncoding
{
    private const int MaxCachedWordLength = 256;

    private readonly Dictionary<string, int> _vocabulary;
    private readonly Dictionary<(string, string), int> _ranks;
    private readonly string? _unknown;
    private readonly bool _fuseUnknown;
    private readonly bool _byteFallback;
    private readonly bool _ignoreMerges;
    private readonly string _continuingPrefix;
    private readonly string _endOfWordSuffix;
    private readonly ConcurrentDictionary<string, string[]> _cache = new(StringComparer.Ordinal);

    private BytePairEncoding(Dictionary<string, int> vocabulary, Dictionary<(string, string), int> ranks, string? unknown, bool fuseUnknown, bool byteFallback, bool ignoreMerges, string continuingPrefix, string endOfWordSuffix)
    {
        _vocabulary = vocabulary;
        _ranks = ranks;
        _unknown = unknown;
        _fuseUnknown = fuseUnknown;
        _byteFallback = byteFallback;
        _ignoreMerges = ignoreMerges;
        _continuingPrefix = continuingPrefix;
        _endOfWordSuffix = endOfWordSuffix;
    }

    public IReadOnlyDictionary<string, int> Vocabulary => _vocabulary;

    public static BytePairEncoding Create(JsonElement element, TokenizerJson json)
    {
        var type = json.Type(element, "model");
        if (type != "BPE")
        {
            throw json.Unsupported("model", type);
        }

        if (!element.TryGetProperty("vocab", out var vocab) || vocab.ValueKind != JsonValueKind.Object)
        {
            throw json.Error("model BPE: 'vocab' must be an object");
        }

        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in vocab.EnumerateObject())
        {
            vocabulary[entry.Name] = entry.Value.GetInt32();
        }

        var ranks = new Dictionary<(string, string), int>();
        var rank = 0;
        foreach (var merge in json.Array(element, "merges", "model BPE"))
        {
            var pair = merge.ValueKind switch
            {
                JsonValueKind.String when merge.GetString()!.Split(' ') is [var a, var b] => (a, b),
                JsonValueKind.Array when merge.GetArrayLength() == 2 => (merge[0].GetString()!, merge[1].GetString()!),
                _ => throw json.Error($"model BPE: merge {merge.GetRawText()} is neither \"a b\" nor [\"a\", \"b\"]"),
            };
            ranks.TryAdd(pair, rank++);
        }

        if (element.TryGetProperty("dropout", out var dropout) && dropout.ValueKind == JsonValueKind.Number && dropout.GetDouble() > 0)
        {
            throw json.Error("model BPE: dropout is for training and is not supported");
        }

        return new BytePairEncoding(
            vocabulary, ranks, TokenizerJson.OptionalString(element, "unk_token"), TokenizerJson.Flag(element, "fuse_unk", false),
            TokenizerJson.Flag(element, "byte_fallback", false), TokenizerJson.Flag(element, "ignore_merges", false),
            TokenizerJson.OptionalString(element, "continuing_subword_prefix") ?? "", TokenizerJson.OptionalString(element, "end_of_word_suffix") ?? "");
    }

    /// <summary>The tokens of one pre-tokenized word.</summary>
    public string[] Tokenize(string word)
    {
        if (word.Length == 0)
        {
            return [];
        }

        if (word.Length <= MaxCachedWordLength && _cache.TryGetValue(word, out var cached))
        {
            return cached;
        }

        var tokens = _ignoreMerges && _vocabulary.ContainsKey(word) ? [word] : Merge(InitialSymbols(word));
        if (word.Length <= MaxCachedWordLength)
        {
            _cache.TryAdd(word, tokens);
        }

        return tokens;
    }

    public int? Id(string token) => _vocabulary.TryGetValue(token, out var id) ? id : null;

    private List<string> InitialSymbols(string word)
    {
        var symbols = new List<string>();
        var unknownPending = false;
        var index = 0;
        var runes = word.EnumerateRunes().ToList();
        foreach (var rune in runes)
        {
            var symbol = rune.ToString();
            if (index > 0)
            {
                symbol = _continuingPrefix + symbol;
            }

            if (index == runes.Count - 1)
            {
                symbol += _endOfWordSuffix;
            }

            index++;
            if (_vocabulary.ContainsKey(symbol))
            {
                symbols.Add(symbol);
                unknownPending = false;
                continue;
            }

            if (_byteFallback)
            {
                var bytes = Encoding.UTF8.GetBytes(rune.ToString()).Select(b => $"<0x{b:X2}>").ToArray();
                if (bytes.All(_vocabulary.ContainsKey))
                {
                    symbols.AddRange(bytes);
                    unknownPending = false;
                    continue;
                }
            }

            if (_unknown is null)
            {
                throw new TokenizerFormatException($"'{symbol}' is not in the vocabulary and the model has no unk_token");
            }

            if (!(_fuseUnknown && unknownPending))
            {
                symbols.Add(_unknown);
            }

            unknownPending = true;
        }

        return symbols;
    }

    private string[] Merge(List<string> symbols)
    {
        while (symbols.Count > 1)
        {
            var best = -1;
            var bestRank = int.MaxValue;
            for (var i = 0; i < symbols.Count - 1; i++)
            {
                if (_ranks.TryGetValue((symbols[i], symbols[i + 1]), out var rank) && rank < bestRank)
                {
                    bestRank = rank;
                    best = i;
                }
            }

            if (best < 0)
            {
                break;
            }

            var merged = MergedToken(symbols[best], symbols[best + 1]);
            symbols[best] = merged;
            symbols.RemoveAt(best + 1);
        }

        return [.. symbols];
    }

    /// <summary>The token two symbols merge into (the right one loses its continuing-subword prefix).</summary>
    private string MergedToken(string left, string right) =>
        _continuingPrefix.Length > 0 && right.StartsWith(_continuingPrefix, StringComparison.Ordinal)
            ? left + right[_continuingPrefix.Length..]
            : left + right;
}
