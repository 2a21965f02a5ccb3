namespace Orleans.MoE.Text.Tokenization;

/// <summary>
/// Decodes ids as they are generated, like the reference's DecodeStream. The text of a new id is
/// the difference between decoding a short window of recent ids with and without it, so decoders
/// that look at neighbours (SentencePiece's leading-space strip, byte-level spaces) give the same
/// text as decoding everything at once. Text is held back while it ends in U+FFFD (an incomplete
/// UTF-8 sequence split over byte tokens) and released once the character is complete, or by
/// <see cref="Flush"/>. The concatenated output equals <see cref="Tokenizer.Decode"/> of all ids
/// as long as the ids form valid UTF-8 (with invalid byte runs the replacement characters may differ).
/// Not thread-safe: one per generation.
/// </summary>
public sealed class StreamingDecoder
{
    private readonly Tokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private readonly List<int> _window = [];

    /// <summary>Ids at the start of the window already turned into text: the context for the next ones.</summary>
    private int _readOffset;

    internal StreamingDecoder(Tokenizer tokenizer, bool skipSpecialTokens)
    {
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>Adds an id; returns the text it completed (possibly empty).</summary>
    public string Push(int id)
    {
        _window.Add(id);
        var prefix = Decode(_readOffset);
        var text = Decode(_window.Count);
        if (text.Length <= prefix.Length || text.EndsWith('\uFFFD'))
        {
            return "";
        }

        // The ids just read become the context of the next ones; older context is dropped.
        _window.RemoveRange(0, _readOffset);
        _readOffset = _window.Count;
        return text[prefix.Length..];
    }

    /// <summary>Whatever is still held back (at the end of generation), then starts afresh.</summary>
    public string Flush()
    {
        var prefix = Decode(_readOffset);
        var text = Decode(_window.Count);
        _window.Clear();
        _readOffset = 0;
        return text.Length > prefix.Length ? text[prefix.Length..] : "";
    }

    private string Decode(int count) => _tokenizer.Decode(_window.Take(count), _skipSpecialTokens);
}
