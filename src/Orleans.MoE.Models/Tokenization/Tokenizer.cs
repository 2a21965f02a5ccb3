using System.Text.Json;

namespace Orleans.MoE.Models.Tokenization;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c>, reproducing the <c>tokenizers</c> library's ids and text:
/// added tokens are split out first; each remaining segment is normalized, pre-tokenized and
/// encoded by BPE; the post-processor adds special tokens. Decoding runs the decoder chain.
/// Supported: BPE (byte_fallback, fuse_unk, ignore_merges); normalizers NFC/NFD/NFKC/NFKD,
/// Lowercase, Prepend, Replace, Sequence; pre-tokenizers ByteLevel, Split, Metaspace, Sequence;
/// decoders ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace, Sequence; TemplateProcessing.
/// Anything else is refused with an error naming it. Thread-safe.
/// </summary>
public sealed class Tokenizer
{
    private readonly AddedVocabulary _added;
    private readonly INormalizer? _normalizer;
    private readonly IPreTokenizer? _preTokenizer;
    private readonly BytePairEncoding _model;
    private readonly PostProcessor? _postProcessor;
    private readonly IDecoder? _decoder;
    private readonly Dictionary<int, string> _idToToken;
    private readonly Dictionary<string, int> _addedByContent;
    private readonly HashSet<int> _special;

    private Tokenizer(AddedVocabulary added, INormalizer? normalizer, IPreTokenizer? preTokenizer, BytePairEncoding model, PostProcessor? postProcessor, IDecoder? decoder)
    {
        _added = added;
        _normalizer = normalizer;
        _preTokenizer = preTokenizer;
        _model = model;
        _postProcessor = postProcessor;
        _decoder = decoder;
        _idToToken = model.Vocabulary.ToDictionary(p => p.Value, p => p.Key);
        foreach (var token in added.Tokens)
        {
            _idToToken[token.Id] = token.Content;
        }

        _addedByContent = added.Tokens.GroupBy(t => t.Content).ToDictionary(g => g.Key, g => g.First().Id, StringComparer.Ordinal);
        _special = added.Tokens.Where(t => t.Special).Select(t => t.Id).ToHashSet();
    }

    public static Tokenizer Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path}: tokenizer file not found", path);
        }

        return FromJson(File.ReadAllText(path), path);
    }

    /// <summary>Parses tokenizer.json text; <paramref name="source"/> names it in errors.</summary>
    public static Tokenizer FromJson(string text, string source)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text);
        }
        catch (JsonException e)
        {
            throw new TokenizerFormatException($"{source}: not valid JSON: {e.Message}", e);
        }

        using (document)
        {
            var root = document.RootElement;
            var json = new TokenizerJson(source);
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("model", out var model))
            {
                throw json.Error("no 'model' section: not a tokenizer.json");
            }

            JsonElement Part(string name) => root.TryGetProperty(name, out var e) ? e : default;
            try
            {
                return new Tokenizer(
                    AddedVocabulary.Create(root, json),
                    Normalizers.Create(NullIfMissing(Part("normalizer")), json),
                    PreTokenizers.Create(NullIfMissing(Part("pre_tokenizer")), json),
                    BytePairEncoding.Create(model, json),
                    PostProcessor.Create(NullIfMissing(Part("post_processor")), json),
                    Decoders.Create(NullIfMissing(Part("decoder")), json));
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or KeyNotFoundException)
            {
                throw json.Error($"malformed: {e.Message}");
            }
        }
    }

    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true) => EncodeBoth(text, addSpecialTokens).Ids;

    /// <summary>The token strings of <see cref="Encode"/>.</summary>
    public IReadOnlyList<string> EncodeToTokens(string text, bool addSpecialTokens = true) => EncodeBoth(text, addSpecialTokens).Tokens;

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var tokens = new List<string>();
        foreach (var id in ids)
        {
            if (skipSpecialTokens && _special.Contains(id))
            {
                continue;
            }

            tokens.Add(_idToToken.TryGetValue(id, out var token) ? token : throw new ArgumentOutOfRangeException(nameof(ids), id, "token id outside the vocabulary"));
        }

        return string.Concat(_decoder is null ? [string.Join(' ', tokens)] : _decoder.Decode(tokens));
    }

    public int? TokenToId(string token) => _addedByContent.TryGetValue(token, out var id) ? id : _model.Id(token);

    public bool IsSpecial(int id) => _special.Contains(id);

    /// <summary>A decoder for tokens arriving one at a time.</summary>
    public StreamingDecoder CreateStreamingDecoder(bool skipSpecialTokens = true) => new(this, skipSpecialTokens);

    private static JsonElement NullIfMissing(JsonElement element) =>
        element.ValueKind == JsonValueKind.Undefined ? JsonDocument.Parse("null").RootElement : element;

    private (List<int> Ids, List<string> Tokens) EncodeBoth(string text, bool addSpecialTokens)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        var tokens = new List<string>();
        var first = true;
        foreach (var (segment, added) in _added.Split(text))
        {
            if (added is not null)
            {
                Add(added);
                first = false;
                continue;
            }

            // Added tokens marked normalized are found in the normalized text.
            foreach (var (piece, normalizedAdded) in _added.Split(_normalizer?.Normalize(segment) ?? segment, normalizedText: true))
            {
                if (normalizedAdded is not null)
                {
                    Add(normalizedAdded);
                }
                else
                {
                    foreach (var word in _preTokenizer?.Split(piece, first) ?? [piece])
                    {
                        foreach (var token in _model.Tokenize(word))
                        {
                            ids.Add(_model.Id(token) ?? throw new TokenizerFormatException($"token '{token}' has no id"));
                            tokens.Add(token);
                        }
                    }
                }

                first = false;
            }
        }

        void Add(AddedToken token)
        {
            ids.Add(token.Id);
            tokens.Add(token.Content);
        }

        if (addSpecialTokens)
        {
            _postProcessor?.Apply(ids, tokens);
        }

        return (ids, tokens);
    }
}
