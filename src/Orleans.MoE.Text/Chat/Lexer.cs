using System.Globalization;
using System.Text;

namespace Orleans.MoE.Text.Chat;

internal enum TokenKind
{
    Data,
    VariableBegin,
    VariableEnd,
    BlockBegin,
    BlockEnd,
    Name,
    String,
    Integer,
    Float,
    Operator,
    End,
}

internal readonly record struct Token(TokenKind Kind, string Text, object? Value, int Line, int Column)
{
    public bool Is(TokenKind kind, string text) => Kind == kind && Text == text;

    public bool IsOperator(string text) => Is(TokenKind.Operator, text);

    public bool IsName(string text) => Is(TokenKind.Name, text);

    public string Describe() =>
        Kind switch
        {
            TokenKind.End => "end of template",
            TokenKind.BlockEnd => "end of statement block",
            TokenKind.VariableEnd => "end of print statement",
            TokenKind.Data => "template data",
            _ => $"'{Text}'",
        };
}

/// <summary>
/// Splits a template into tokens as Jinja2's lexer does with trim_blocks and lstrip_blocks on: the newline after a
/// block or comment tag is dropped, spaces before a block or comment tag alone on its line are dropped,
/// <c>-</c> strips all whitespace on that side of a tag, <c>+</c> keeps it, and one trailing newline of the source is dropped.
/// </summary>
internal sealed class Lexer
{
    /// <summary>Python's one-letter string escapes.</summary>
    private static readonly Dictionary<char, char> s_escapes = new()
    {
        ['a'] = '\a', ['b'] = '\b', ['f'] = '\f', ['n'] = '\n', ['r'] = '\r', ['t'] = '\t', ['v'] = '\v',
    };

    private static readonly string[] s_operators =
        ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", "=", "<", ">"];

    private readonly string _source;
    private readonly string _sourceName;
    private readonly List<Token> _tokens = [];
    private readonly int[] _lineStarts;
    private int _pos;
    private bool _lineStarting = true;

    private Lexer(string source, string sourceName)
    {
        _source = source;
        _sourceName = sourceName;
        var starts = new List<int> { 0 };
        for (var i = 0; i < source.Length; i++)
        {
            if (source[i] == '\n')
            {
                starts.Add(i + 1);
            }
        }

        _lineStarts = [.. starts];
    }

    public static List<Token> Tokenize(string source, string sourceName)
    {
        source = source.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        if (source.EndsWith('\n'))
        {
            source = source[..^1];
        }

        var lexer = new Lexer(source, sourceName);
        lexer.Run();
        return lexer._tokens;
    }

    private (int Line, int Column) Position(int offset)
    {
        var line = Array.BinarySearch(_lineStarts, offset);
        if (line < 0)
        {
            line = ~line - 1;
        }

        return (line + 1, offset - _lineStarts[line] + 1);
    }

    private ChatTemplateException Error(int offset, string message)
    {
        var (line, column) = Position(offset);
        return new ChatTemplateException($"{_sourceName}:{line}:{column}: {message}");
    }

    private void Add(TokenKind kind, string text, object? value, int offset)
    {
        var (line, column) = Position(offset);
        _tokens.Add(new Token(kind, text, value, line, column));
    }

    private void Run()
    {
        while (_pos < _source.Length)
        {
            var tag = FindTag(_pos);
            var text = _source[_pos..(tag < 0 ? _source.Length : tag)];
            var textStart = _pos;
            if (tag < 0)
            {
                Add(TokenKind.Data, text, text, textStart);
                break;
            }

            var kind = _source[tag + 1];
            var sign = tag + 2 < _source.Length && _source[tag + 2] is '-' or '+' ? _source[tag + 2] : '\0';
            var rawBody = kind == '%' ? MatchWord(tag + 2 + (sign == '\0' ? 0 : 1), "raw", allowPlus: false) : -1;
            text = StripBefore(text, sign, kind != '{');
            if (text.Length > 0)
            {
                Add(TokenKind.Data, text, text, textStart);
            }

            var inner = tag + 2 + (sign == '\0' ? 0 : 1);
            if (kind == '#')
            {
                LexComment(tag, inner);
            }
            else if (rawBody >= 0)
            {
                LexRaw(tag, rawBody);
            }
            else
            {
                LexTag(tag, inner, kind == '%');
            }
        }

        Add(TokenKind.End, string.Empty, null, _source.Length);
    }

    private int FindTag(int from)
    {
        for (var i = _source.IndexOf('{', from); i >= 0 && i + 1 < _source.Length; i = _source.IndexOf('{', i + 1))
        {
            if (_source[i + 1] is '{' or '%' or '#')
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Applies the whitespace control of the tag that follows <paramref name="text"/>.</summary>
    private string StripBefore(string text, char sign, bool blockOrComment)
    {
        if (sign == '-')
        {
            var end = text.Length;
            while (end > 0 && PyString.IsSpace(text[end - 1]))
            {
                end--;
            }

            return text[..end];
        }

        if (sign != '+' && blockOrComment)
        {
            var lineStart = text.LastIndexOf('\n') + 1;
            if ((lineStart > 0 || _lineStarting) && lineStart < text.Length && AllSpace(text.AsSpan(lineStart)))
            {
                return text[..lineStart];
            }
        }

        return text;
    }

    private static bool AllSpace(ReadOnlySpan<char> text)
    {
        foreach (var c in text)
        {
            if (!PyString.IsSpace(c))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Moves past a tag's closing delimiter at <paramref name="closeEnd"/>: all whitespace after <c>-</c>, else the newline after a block.</summary>
    private void AfterTag(int closeEnd, bool dash, bool trimNewline)
    {
        _pos = closeEnd;
        if (dash)
        {
            while (_pos < _source.Length && PyString.IsSpace(_source[_pos]))
            {
                _pos++;
            }
        }
        else if (trimNewline && _pos < _source.Length && _source[_pos] == '\n')
        {
            _pos++;
        }

        _lineStarting = _pos > 0 && _source[_pos - 1] == '\n';
    }

    private void LexComment(int tag, int inner)
    {
        var close = _source.IndexOf("#}", inner, StringComparison.Ordinal);
        if (close < 0)
        {
            throw Error(tag, "missing end of comment tag");
        }

        var modifier = close > inner ? _source[close - 1] : '\0';
        AfterTag(close + 2, modifier == '-', trimNewline: modifier != '+');
    }

    /// <summary>The offset after <paramref name="word"/> and the tag end when the block at <paramref name="from"/> is exactly that word, else -1.</summary>
    private int MatchWord(int from, string word, bool allowPlus)
    {
        var i = from;
        while (i < _source.Length && PyString.IsSpace(_source[i]))
        {
            i++;
        }

        if (string.CompareOrdinal(_source, i, word, 0, word.Length) != 0)
        {
            return -1;
        }

        i += word.Length;
        while (i < _source.Length && PyString.IsSpace(_source[i]))
        {
            i++;
        }

        if (i + 1 < _source.Length && _source[i] == '%' && _source[i + 1] == '}')
        {
            return i;
        }

        return i + 2 < _source.Length && (_source[i] == '-' || (allowPlus && _source[i] == '+')) && _source[i + 1] == '%' && _source[i + 2] == '}' ? i : -1;
    }

    private void LexRaw(int tag, int beginClose)
    {
        var dash = _source[beginClose] == '-';
        _pos = beginClose + (dash ? 3 : 2);
        if (dash)
        {
            while (_pos < _source.Length && PyString.IsSpace(_source[_pos]))
            {
                _pos++;
            }
        }

        _lineStarting = _pos > 0 && _source[_pos - 1] == '\n';
        for (var search = _pos; ;)
        {
            var end = _source.IndexOf("{%", search, StringComparison.Ordinal);
            if (end < 0)
            {
                throw Error(tag, "missing end of raw directive");
            }

            var sign = end + 2 < _source.Length && _source[end + 2] is '-' or '+' ? _source[end + 2] : '\0';
            var close = MatchWord(end + 2 + (sign == '\0' ? 0 : 1), "endraw", allowPlus: true);
            if (close < 0)
            {
                search = end + 2;
                continue;
            }

            var text = StripBefore(_source[_pos..end], sign, blockOrComment: true);
            if (text.Length > 0)
            {
                Add(TokenKind.Data, text, text, _pos);
            }

            var modifier = _source[close];
            AfterTag(close + (modifier == '%' ? 2 : 3), modifier == '-', trimNewline: modifier != '+');
            return;
        }
    }

    private void LexTag(int tag, int inner, bool block)
    {
        Add(block ? TokenKind.BlockBegin : TokenKind.VariableBegin, block ? "{%" : "{{", null, tag);
        var brackets = new Stack<char>();
        var i = inner;
        while (true)
        {
            while (i < _source.Length && PyString.IsSpace(_source[i]))
            {
                i++;
            }

            if (i >= _source.Length)
            {
                throw Error(tag, block ? "unexpected end of template, expected end of statement block ('%}')" : "unexpected end of template, expected end of print statement ('}}')");
            }

            if (brackets.Count == 0)
            {
                var close = block ? "%}" : "}}";
                var modifier = _source[i] == '-' || (block && _source[i] == '+') ? _source[i] : '\0';
                if (string.CompareOrdinal(_source, i + (modifier == '\0' ? 0 : 1), close, 0, 2) == 0)
                {
                    Add(block ? TokenKind.BlockEnd : TokenKind.VariableEnd, close, null, i);
                    AfterTag(i + 2 + (modifier == '\0' ? 0 : 1), modifier == '-', trimNewline: block && modifier != '+');
                    return;
                }
            }

            i = LexToken(i, brackets);
        }
    }

    private int LexToken(int i, Stack<char> brackets)
    {
        var c = _source[i];
        if (char.IsAsciiLetter(c) || c == '_')
        {
            var end = i + 1;
            while (end < _source.Length && (char.IsAsciiLetterOrDigit(_source[end]) || _source[end] == '_'))
            {
                end++;
            }

            Add(TokenKind.Name, _source[i..end], null, i);
            return end;
        }

        if (char.IsAsciiDigit(c))
        {
            return LexNumber(i);
        }

        if (c is '\'' or '"')
        {
            return LexString(i);
        }

        foreach (var op in s_operators)
        {
            if (string.CompareOrdinal(_source, i, op, 0, op.Length) == 0)
            {
                if (op is "(" or "[" or "{")
                {
                    brackets.Push(op[0]);
                }
                else if (op is ")" or "]" or "}")
                {
                    var open = op == ")" ? '(' : op == "]" ? '[' : '{';
                    if (brackets.Count == 0 || brackets.Pop() != open)
                    {
                        throw Error(i, $"unexpected '{op}'");
                    }
                }

                Add(TokenKind.Operator, op, null, i);
                return i + op.Length;
            }
        }

        throw Error(i, $"unexpected char {PyOps.StringRepr(c.ToString())}");
    }

    private int Digits(int i)
    {
        while (i < _source.Length && (char.IsAsciiDigit(_source[i]) || (_source[i] == '_' && i + 1 < _source.Length && char.IsAsciiDigit(_source[i + 1]))))
        {
            i++;
        }

        return i;
    }

    private int LexNumber(int start)
    {
        var end = Digits(start);
        var isFloat = false;
        var afterDot = start > 0 && _source[start - 1] == '.';
        if (!afterDot && end + 1 < _source.Length && _source[end] == '.' && char.IsAsciiDigit(_source[end + 1]))
        {
            end = Digits(end + 1);
            isFloat = true;
        }

        if (!afterDot && end < _source.Length && _source[end] is 'e' or 'E')
        {
            var e = end + 1;
            if (e < _source.Length && _source[e] is '+' or '-')
            {
                e++;
            }

            if (e < _source.Length && char.IsAsciiDigit(_source[e]))
            {
                end = Digits(e);
                isFloat = true;
            }
        }

        var text = _source[start..end];
        var clean = text.Replace("_", string.Empty, StringComparison.Ordinal);
        if (isFloat)
        {
            Add(TokenKind.Float, text, double.Parse(clean, NumberStyles.Float, CultureInfo.InvariantCulture), start);
        }
        else if (long.TryParse(clean, NumberStyles.None, CultureInfo.InvariantCulture, out var value))
        {
            Add(TokenKind.Integer, text, value, start);
        }
        else
        {
            throw Error(start, $"integer {text} is too large");
        }

        return end;
    }

    private int LexString(int start)
    {
        var quote = _source[start];
        var builder = new StringBuilder();
        var i = start + 1;
        while (true)
        {
            if (i >= _source.Length)
            {
                throw Error(start, "unexpected end of string");
            }

            var c = _source[i];
            if (c == quote)
            {
                break;
            }

            if (c != '\\')
            {
                builder.Append(c);
                i++;
                continue;
            }

            if (i + 1 >= _source.Length)
            {
                throw Error(start, "unexpected end of string");
            }

            i = Escape(i, builder);
        }

        var value = builder.ToString();
        Add(TokenKind.String, _source[start..(i + 1)], value, start);
        return i + 1;
    }

    /// <summary>Decodes one backslash escape at <paramref name="i"/> as Python's unicode-escape codec does.</summary>
    private int Escape(int i, StringBuilder builder)
    {
        var e = _source[i + 1];
        switch (e)
        {
            case '\n':
                return i + 2;
            case '\\' or '\'' or '"':
                builder.Append(e);
                return i + 2;
            case var c when s_escapes.TryGetValue(c, out var escaped):
                builder.Append(escaped);
                return i + 2;
            case 'x' or 'u' or 'U':
                var width = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                if (i + 2 + width > _source.Length
                    || !int.TryParse(_source.AsSpan(i + 2, width), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var code)
                    || code > 0x10FFFF)
                {
                    throw Error(i, $"truncated \\{e} escape in string");
                }

                builder.Append(char.ConvertFromUtf32(code));
                return i + 2 + width;
            case >= '0' and <= '7':
                var end = i + 1;
                var octal = 0;
                while (end < _source.Length && end < i + 4 && _source[end] is >= '0' and <= '7')
                {
                    octal = (octal * 8) + (_source[end] - '0');
                    end++;
                }

                builder.Append((char)octal);
                return end;
            default:
                builder.Append('\\');
                return i + 1;
        }
    }
}
