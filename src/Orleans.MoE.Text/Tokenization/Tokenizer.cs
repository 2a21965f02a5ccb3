using System.Text.Json;

namespace Orleans.MoE.Text.Tokenization;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c>, reproducing the <c>tokenizers</c> library (0.23): added
/// tokens are split out of the raw text first, each remaining piece is normalized (and searched for
/// normalized added tokens), pre-tokenized and encoded by BPE; truncation, the post-processor's
/// special tokens and padding follow. Decoding maps ids to token strings and runs the decoder chain.
/// Supported: the BPE model (byte_fallback, fuse_unk, unk_token, ignore_merges,
/// continuing_subword_prefix, end_of_word_suffix, both merges formats); normalizers NFC, NFD, NFKC,
/// NFKD, Lowercase, Prepend, Replace, Strip, Sequence; pre-tokenizers ByteLevel, Split, Metaspace,
/// Sequence; post-processors TemplateProcessing, ByteLevel, Sequence; decoders ByteLevel,
/// ByteFallback, Fuse, Replace, Strip, Metaspace, BPEDecoder, Sequence. Anything else is refused
/// with a <see cref="TokenizerFormatException"/> naming the file and the component. Thread-safe.
/// </summary>
public sealed class Tokenizer
{
    private readonly AddedVocabulary _added;
    private readonly INormalizer? _normalizer;
    private readonly IPreTokenizer? _preTokenizer;
    private readonly BytePairEncoding _model;
    private readonly PostProcessor? _postProcessor;
    private readonly IDecoder? _decoder;
    private readonly Truncation? _truncation;
    private readonly Padding? _padding;

    private Tokenizer(AddedVocabulary added, INormalizer? normalizer, IPreTokenizer? preTokenizer, BytePairEncoding model, PostProcessor? postProcessor, IDecoder? decoder, Truncation? truncation, Padding? padding)
    {
        _added = added;
        _normalizer = normalizer;
        _preTokenizer = preTokenizer;
        _model = model;
        _postProcessor = postProcessor;
        _decoder = decoder;
        _truncation = truncation;
        _padding = padding;
        VocabularySize = Math.Max(model.Tokens.Keys.DefaultIfEmpty(-1).Max(), added.ById.Keys.DefaultIfEmpty(-1).Max()) + 1;
    }

    /// <summary>Largest token id + 1, over the model's vocabulary and the added tokens.</summary>
    public int VocabularySize { get; }

    /// <summary>Loads a tokenizer.json file.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="TokenizerFormatException">Malformed, or uses a component that is not supported.</exception>
    public static Tokenizer Load(string tokenizerJsonPath)
    {
        ArgumentNullException.ThrowIfNull(tokenizerJsonPath);
        if (!File.Exists(tokenizerJsonPath))
        {
            throw new FileNotFoundException($"{tokenizerJsonPath}: tokenizer file not found", tokenizerJsonPath);
        }

        return FromJson(File.ReadAllText(tokenizerJsonPath), tokenizerJsonPath);
    }

    /// <summary>Parses tokenizer.json text; <paramref name="sourceName"/> names it in errors.</summary>
    /// <exception cref="TokenizerFormatException">Malformed, or uses a component that is not supported.</exception>
    public static Tokenizer FromJson(string json, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(sourceName);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new TokenizerFormatException($"{sourceName}: not valid JSON: {e.Message}", e);
        }

        using (document)
        {
            var root = document.RootElement;
            var reader = new TokenizerJson(sourceName);
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("model", out var model))
            {
                throw reader.Error("no 'model' section: not a tokenizer.json");
            }

            JsonElement Part(string name) => root.TryGetProperty(name, out var e) ? e : default;
            try
            {
                var normalizer = Normalizers.Create(Part("normalizer"), reader);
                var bpe = BytePairEncoding.Create(model, reader);
                return new Tokenizer(
                    AddedVocabulary.Create(root, reader, bpe, normalizer),
                    normalizer,
                    PreTokenizers.Create(Part("pre_tokenizer"), reader),
                    bpe,
                    PostProcessor.Create(Part("post_processor"), reader),
                    Decoders.Create(Part("decoder"), reader),
                    Truncation.Create(Part("truncation"), reader),
                    Padding.Create(Part("padding"), reader));
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or KeyNotFoundException or ArgumentException)
            {
                throw reader.Error($"malformed: {e.Message}");
            }
        }
    }

    /// <summary>The token ids of <paramref name="text"/>; with <paramref name="addSpecialTokens"/>, the post-processor's special tokens too.</summary>
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true) => EncodeWithTokens(text, addSpecialTokens).Ids;

    /// <summary>The token strings of <see cref="Encode"/>.</summary>
    public IReadOnlyList<string> EncodeToTokens(string text, bool addSpecialTokens = true) => EncodeWithTokens(text, addSpecialTokens).Tokens;

    /// <summary>
    /// The text of <paramref name="ids"/>. With <paramref name="skipSpecialTokens"/>, tokens whose string is a
    /// special token's are left out. Ids with no token are skipped, as the reference does.
    /// </summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var tokens = new List<string>();
        foreach (var id in ids)
        {
            if (IdToToken(id) is { } token && !(skipSpecialTokens && _added.SpecialContents.Contains(token)))
            {
                tokens.Add(token);
            }
        }

        return _decoder is null ? string.Join(' ', tokens) : string.Concat(_decoder.Decode(tokens));
    }

    /// <summary>The id of a token string (added tokens first, then the model's vocabulary).</summary>
    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        return _added.Ids.TryGetValue(token, out var id) ? id : _model.Id(token);
    }

    /// <summary>The token string of an id (an added token marked normalized as its normalized form, as the reference).</summary>
    public string? IdToToken(int id) =>
        _added.ById.TryGetValue(id, out var added) ? added.Pattern : _model.Tokens.GetValueOrDefault(id);

    /// <summary>Whether <paramref name="id"/> is an added token marked special.</summary>
    public bool IsSpecial(int id) => _added.ById.TryGetValue(id, out var token) && token.Special;

    /// <summary>A decoder for ids arriving one at a time (generation).</summary>
    public StreamingDecoder CreateStreamingDecoder(bool skipSpecialTokens = true) => new(this, skipSpecialTokens);

    private (List<int> Ids, List<string> Tokens) EncodeWithTokens(string text, bool addSpecialTokens)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        var tokens = new List<string>();
        var atStart = true;
        foreach (var (segment, rawToken) in _added.Split(text, normalizedText: false))
        {
            if (rawToken is not null)
            {
                ids.Add(rawToken.Id);
                tokens.Add(segment);
                atStart = false;
                continue;
            }

            if (segment.Length == 0)
            {
                continue;
            }

            var normalized = _normalizer?.Normalize(segment) ?? segment;
            foreach (var (piece, normalizedToken) in _added.Split(normalized, normalizedText: true))
            {
                if (normalizedToken is not null)
                {
                    ids.Add(normalizedToken.Id);
                    tokens.Add(piece);
                }
                else if (piece.Length > 0)
                {
                    var preTokens = _preTokenizer?.Split(new PreToken(piece, atStart)) ?? [new PreToken(piece, atStart)];
                    foreach (var word in preTokens)
                    {
                        foreach (var id in _model.Tokenize(word.Text))
                        {
                            ids.Add(id);
                            tokens.Add(_model.Tokens[id]);
                        }
                    }
                }

                atStart = false;
            }

            atStart = false;
        }

        _truncation?.Apply(ids, tokens, addSpecialTokens ? _postProcessor?.AddedTokenCount ?? 0 : 0);
        _postProcessor?.Apply(ids, tokens, addSpecialTokens);
        _padding?.Apply(ids, tokens);
        return (ids, tokens);
    }
}
