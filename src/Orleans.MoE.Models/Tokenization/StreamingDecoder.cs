namespace Orleans.MoE.Models.Tokenization;

/// <summary>
/// Decodes tokens as they are generated. Each new token's text is the difference between decoding a
/// window of recent ids with and without it; text is held back while it ends in an incomplete UTF-8
/// sequence (U+FFFD), so multi-byte characters split over byte tokens come out whole. The
/// concatenated output equals decoding all ids at once.
/// </summary>
public sealed class StreamingDecoder
{
    private readonly Tokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private readonly List<int> _ids = [];
    private int _prefixOffset;
    private int _readOffset;

    internal StreamingDecoder(Tokenizer tokenizer, bool skipSpecialTokens)
    {
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>Adds a token; returns the text it completed (possibly empty).</summary>
    public string Push(int id)
    {
        _ids.Add(id);
        var prefix = Decode(_prefixOffset, _readOffset);
        var text = Decode(_prefixOffset, _ids.Count);
        if (text.Length <= prefix.Length || text.EndsWith('\uFFFD'))
        {
            return "";
        }

        _prefixOffset = _readOffset;
        _readOffset = _ids.Count;
        return text[prefix.Length..];
    }

    /// <summary>Whatever is still held back (at the end of generation).</summary>
    public string Flush()
    {
        if (_readOffset == _ids.Count)
        {
            return "";
        }

        var prefix = Decode(_prefixOffset, _readOffset);
        var text = Decode(_prefixOffset, _ids.Count);
        _prefixOffset = _readOffset = _ids.Count;
        return text.Length > prefix.Length ? text[prefix.Length..] : "";
    }

    private string Decode(int from, int to) => _tokenizer.Decode(_ids.Skip(from).Take(to - from), _skipSpecialTokens);
}
