using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Orleans.MoE.Text.Tokenization;

/// <summary>
/// The BPE model, as the reference's: a word becomes its characters (with the continuing-subword
/// prefix after the first and the end-of-word suffix on the last); a character missing from the
/// vocabulary becomes its &lt;0xXX&gt; byte tokens (byte_fallback) or the unknown token (consecutive
/// ones fused with fuse_unk; dropped when there is no unk_token). Then the adjacent pair of lowest
/// merge rank, leftmost among equals, is merged until no pair has a rank (a priority queue over a
/// linked list of symbols). Results are cached per word.
/// </summary>
internal sealed class BytePairEncoding
{
    private const int CacheCapacity = 10_000;
    private const int MaxCachedWordLength = 256;

    private readonly Dictionary<string, int> _vocabulary;
    private readonly Dictionary<int, string> _tokens;
    private readonly Dictionary<long, (int Rank, int Merged)> _merges;
    private readonly string? _unknown;
    private readonly bool _fuseUnknown;
    private readonly bool _byteFallback;
    private readonly bool _ignoreMerges;
    private readonly string? _continuingPrefix;
    private readonly string? _endOfWordSuffix;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private int _cacheCount;

    private BytePairEncoding(Dictionary<string, int> vocabulary, Dictionary<long, (int, int)> merges, string? unknown, bool fuseUnknown, bool byteFallback, bool ignoreMerges, string? continuingPrefix, string? endOfWordSuffix)
    {
        _vocabulary = vocabulary;
        _tokens = [];
        foreach (var (token, id) in vocabulary)
        {
            _tokens[id] = token;
        }

        _merges = merges;
        _unknown = unknown;
        _fuseUnknown = fuseUnknown;
        _byteFallback = byteFallback;
        _ignoreMerges = ignoreMerges;
        _continuingPrefix = continuingPrefix;
        _endOfWordSuffix = endOfWordSuffix;
    }

    /// <summary>Entries in the vocabulary (the reference's get_vocab_size).</summary>
    public int Count => _vocabulary.Count;

    public IReadOnlyDictionary<int, string> Tokens => _tokens;

    public static BytePairEncoding Create(JsonElement element, TokenizerJson json)
    {
        var type = element.ValueKind == JsonValueKind.Object && !element.TryGetProperty("type", out _) && element.TryGetProperty("merges", out _)
            ? "BPE"
            : json.Type(element, "model");
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
            vocabulary[entry.Name] = entry.Value.ValueKind == JsonValueKind.Number && entry.Value.TryGetInt32(out var id) && id >= 0
                ? id
                : throw json.Error($"model BPE: vocabulary entry '{entry.Name}' has no valid id");
        }

        if (element.TryGetProperty("dropout", out var dropout) && dropout.ValueKind == JsonValueKind.Number && dropout.GetDouble() > 0)
        {
            throw json.Error("model BPE: dropout (random merges, for training) is not supported");
        }

        var prefix = TokenizerJson.OptionalString(element, "continuing_subword_prefix");
        var merges = new Dictionary<long, (int, int)>();
        var rank = 0;
        foreach (var (left, right) in Merges(element, json))
        {
            var leftId = vocabulary.TryGetValue(left, out var l) ? l : throw json.Error($"model BPE: merge token '{left}' is not in the vocabulary");
            var rightId = vocabulary.TryGetValue(right, out var r) ? r : throw json.Error($"model BPE: merge token '{right}' is not in the vocabulary");
            var merged = left + (prefix is not null && right.StartsWith(prefix, StringComparison.Ordinal) ? right[prefix.Length..] : right);
            var mergedId = vocabulary.TryGetValue(merged, out var m) ? m : throw json.Error($"model BPE: merged token '{merged}' is not in the vocabulary");
            merges[Pair(leftId, rightId)] = (rank++, mergedId);
        }

        return new BytePairEncoding(
            vocabulary, merges, TokenizerJson.OptionalString(element, "unk_token"), TokenizerJson.Flag(element, "fuse_unk", false),
            TokenizerJson.Flag(element, "byte_fallback", false), TokenizerJson.Flag(element, "ignore_merges", false),
            prefix, TokenizerJson.OptionalString(element, "end_of_word_suffix"));
    }

    /// <summary>The merges, in rank order: either "a b" strings (lines starting "#version" skipped) or ["a", "b"] pairs.</summary>
    private static IEnumerable<(string Left, string Right)> Merges(JsonElement element, TokenizerJson json)
    {
        var merges = json.Array(element, "merges", "model BPE").ToList();
        if (merges.All(m => m.ValueKind == JsonValueKind.String))
        {
            var line = 0;
            foreach (var merge in merges.Select(m => m.GetString()!).Where(m => !m.StartsWith("#version", StringComparison.Ordinal)))
            {
                line++;
                yield return merge.Split(' ') is [var a, var b] ? (a, b) : throw json.Error($"model BPE: merge {line} '{merge}' is not two tokens separated by one space");
            }
        }
        else if (merges.All(m => m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2 && m.EnumerateArray().All(t => t.ValueKind == JsonValueKind.String)))
        {
            foreach (var merge in merges)
            {
                yield return (merge[0].GetString()!, merge[1].GetString()!);
            }
        }
        else
        {
            throw json.Error("model BPE: 'merges' must be all \"a b\" strings or all [\"a\", \"b\"] pairs");
        }
    }

    /// <summary>The token ids of one pre-tokenized word.</summary>
    public int[] Tokenize(string word)
    {
        if (word.Length == 0)
        {
            return [];
        }

        if (_ignoreMerges && _vocabulary.TryGetValue(word, out var whole))
        {
            return [whole];
        }

        if (_cache.TryGetValue(word, out var cached))
        {
            return cached;
        }

        var ids = Merge(InitialSymbols(word));
        if (word.Length <= MaxCachedWordLength && Volatile.Read(ref _cacheCount) < CacheCapacity && _cache.TryAdd(word, ids))
        {
            Interlocked.Increment(ref _cacheCount);
        }

        return ids;
    }

    public int? Id(string token) => _vocabulary.TryGetValue(token, out var id) ? id : null;

    private List<int> InitialSymbols(string word)
    {
        var symbols = new List<int>(word.Length);
        int? pendingUnknown = null;
        var index = 0;
        while (index < word.Length)
        {
            var length = char.IsHighSurrogate(word[index]) && index + 1 < word.Length && char.IsLowSurrogate(word[index + 1]) ? 2 : 1;
            var symbol = word.Substring(index, length);
            if (index > 0 && _continuingPrefix is not null)
            {
                symbol = _continuingPrefix + symbol;
            }

            index += length;
            if (index == word.Length && _endOfWordSuffix is not null)
            {
                symbol += _endOfWordSuffix;
            }

            if (_vocabulary.TryGetValue(symbol, out var id))
            {
                if (pendingUnknown is { } unknownId)
                {
                    symbols.Add(unknownId);
                    pendingUnknown = null;
                }

                symbols.Add(id);
                continue;
            }

            if (_byteFallback && ByteTokens(symbol) is { } bytes)
            {
                // As the reference, a pending unknown token is not flushed before byte tokens.
                symbols.AddRange(bytes);
                continue;
            }

            if (_unknown is null)
            {
                // The reference drops characters it cannot encode when there is no unk_token.
                continue;
            }

            var unknown = _vocabulary.TryGetValue(_unknown, out var u) ? u : throw new TokenizerFormatException($"model BPE: unk_token '{_unknown}' is not in the vocabulary");
            if (pendingUnknown is { } previous && !_fuseUnknown)
            {
                symbols.Add(previous);
            }

            pendingUnknown = unknown;
        }

        if (pendingUnknown is { } last)
        {
            symbols.Add(last);
        }

        return symbols;
    }

    /// <summary>The &lt;0xXX&gt; token ids of <paramref name="symbol"/>'s UTF-8 bytes, or null if one is missing.</summary>
    private int[]? ByteTokens(string symbol)
    {
        var bytes = Encoding.UTF8.GetBytes(symbol);
        var ids = new int[bytes.Length];
        for (var i = 0; i < bytes.Length; i++)
        {
            if (!_vocabulary.TryGetValue(string.Create(CultureInfo.InvariantCulture, $"<0x{bytes[i]:X2}>"), out ids[i]))
            {
                return null;
            }
        }

        return ids;
    }

    private int[] Merge(List<int> symbols)
    {
        var count = symbols.Count;
        if (count < 2 || _merges.Count == 0)
        {
            return [.. symbols];
        }

        var ids = symbols.ToArray();
        var previous = new int[count];
        var next = new int[count];
        var alive = new bool[count];
        var queue = new PriorityQueue<(int Position, int Merged), long>(count);
        for (var i = 0; i < count; i++)
        {
            previous[i] = i - 1;
            next[i] = i + 1 < count ? i + 1 : -1;
            alive[i] = true;
            if (i + 1 < count && _merges.TryGetValue(Pair(ids[i], ids[i + 1]), out var merge))
            {
                queue.Enqueue((i, merge.Merged), Priority(merge.Rank, i));
            }
        }

        while (queue.TryDequeue(out var top, out _))
        {
            var position = top.Position;
            if (!alive[position] || next[position] < 0)
            {
                continue;
            }

            var right = next[position];
            if (!_merges.TryGetValue(Pair(ids[position], ids[right]), out var current) || current.Merged != top.Merged)
            {
                continue; // an expired entry
            }

            ids[position] = top.Merged;
            alive[right] = false;
            next[position] = next[right];
            if (next[right] >= 0)
            {
                previous[next[right]] = position;
            }

            if (previous[position] >= 0 && _merges.TryGetValue(Pair(ids[previous[position]], ids[position]), out var before))
            {
                queue.Enqueue((previous[position], before.Merged), Priority(before.Rank, previous[position]));
            }

            if (next[position] >= 0 && _merges.TryGetValue(Pair(ids[position], ids[next[position]]), out var after))
            {
                queue.Enqueue((position, after.Merged), Priority(after.Rank, position));
            }
        }

        var result = new List<int>(count);
        for (var i = 0; i >= 0; i = next[i])
        {
            result.Add(ids[i]);
        }

        return [.. result];
    }

    private static long Pair(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>Lowest rank first, then leftmost.</summary>
    private static long Priority(int rank, int position) => ((long)rank << 32) | (uint)position;
}
