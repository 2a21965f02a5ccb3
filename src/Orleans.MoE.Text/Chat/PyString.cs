using System.Globalization;
using System.Text;

namespace Orleans.MoE.Text.Chat;

/// <summary>Python str operations, indexed by code point as Python does (not by UTF-16 unit).</summary>
internal static class PyString
{
    /// <summary>Python's str.isspace for one character (char.IsWhiteSpace plus the separators U+001C..U+001F).</summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\u001c' and <= '\u001f';

    private static bool HasSurrogates(string s) => s.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0;

    public static string[] CodePoints(string s)
    {
        if (!HasSurrogates(s))
        {
            var chars = new string[s.Length];
            for (var i = 0; i < s.Length; i++)
            {
                chars[i] = s[i].ToString();
            }

            return chars;
        }

        return s.EnumerateRunes().Select(r => r.ToString()).ToArray();
    }

    public static int Length(string s) => HasSurrogates(s) ? s.EnumerateRunes().Count() : s.Length;

    public static object? Index(string s, long index)
    {
        var points = CodePoints(s);
        var i = index < 0 ? index + points.Length : index;
        return i >= 0 && i < points.Length ? points[i] : null;
    }

    public static string Slice(string s, long? start, long? stop, long? step)
    {
        var points = CodePoints(s);
        var builder = new StringBuilder();
        foreach (var i in Slicing.Indices(points.Length, start, stop, step))
        {
            builder.Append(points[i]);
        }

        return builder.ToString();
    }

    public static string Strip(string s, string? chars, bool left, bool right)
    {
        Func<string, bool> strip = chars is null
            ? p => p.Length == 1 && IsSpace(p[0])
            : p => chars.Contains(p, StringComparison.Ordinal);
        var points = CodePoints(s);
        var begin = 0;
        var end = points.Length;
        while (left && begin < end && strip(points[begin]))
        {
            begin++;
        }

        while (right && end > begin && strip(points[end - 1]))
        {
            end--;
        }

        return string.Concat(points[begin..end]);
    }

    /// <summary>str.split / str.rsplit: by runs of whitespace when <paramref name="separator"/> is null.</summary>
    public static List<object?> Split(string s, string? separator, long maxSplit, bool fromRight)
    {
        if (separator is not null)
        {
            if (separator.Length == 0)
            {
                throw new ChatTemplateException("empty separator");
            }

            var parts = new List<string>();
            if (!fromRight)
            {
                var start = 0;
                while (maxSplit < 0 || parts.Count < maxSplit)
                {
                    var at = s.IndexOf(separator, start, StringComparison.Ordinal);
                    if (at < 0)
                    {
                        break;
                    }

                    parts.Add(s[start..at]);
                    start = at + separator.Length;
                }

                parts.Add(s[start..]);
                return [.. parts];
            }

            var end = s.Length;
            while (maxSplit < 0 || parts.Count < maxSplit)
            {
                var at = end - separator.Length < 0 ? -1 : s.LastIndexOf(separator, end - 1, end, StringComparison.Ordinal);
                if (at < 0 || at + separator.Length > end)
                {
                    break;
                }

                parts.Add(s[(at + separator.Length)..end]);
                end = at;
            }

            parts.Add(s[..end]);
            parts.Reverse();
            return [.. parts];
        }

        var words = new List<string>();
        if (!fromRight)
        {
            var i = 0;
            while (true)
            {
                while (i < s.Length && IsSpace(s[i]))
                {
                    i++;
                }

                if (i == s.Length)
                {
                    break;
                }

                if (maxSplit >= 0 && words.Count == maxSplit)
                {
                    words.Add(s[i..]);
                    break;
                }

                var start = i;
                while (i < s.Length && !IsSpace(s[i]))
                {
                    i++;
                }

                words.Add(s[start..i]);
            }

            return [.. words];
        }

        var j = s.Length;
        while (true)
        {
            while (j > 0 && IsSpace(s[j - 1]))
            {
                j--;
            }

            if (j == 0)
            {
                break;
            }

            if (maxSplit >= 0 && words.Count == maxSplit)
            {
                words.Add(s[..j]);
                break;
            }

            var end = j;
            while (j > 0 && !IsSpace(s[j - 1]))
            {
                j--;
            }

            words.Add(s[j..end]);
        }

        words.Reverse();
        return [.. words];
    }

    /// <summary>str.splitlines() without keepends.</summary>
    public static List<string> SplitLines(string s)
    {
        var lines = new List<string>();
        var start = 0;
        var i = 0;
        while (i < s.Length)
        {
            var c = s[i];
            if (c is '\n' or '\r' or '\v' or '\f' or '\u001c' or '\u001d' or '\u001e' or '\u0085' or '\u2028' or '\u2029')
            {
                lines.Add(s[start..i]);
                i += c == '\r' && i + 1 < s.Length && s[i + 1] == '\n' ? 2 : 1;
                start = i;
            }
            else
            {
                i++;
            }
        }

        if (start < s.Length)
        {
            lines.Add(s[start..]);
        }

        return lines;
    }

    public static string Replace(string s, string old, string replacement, long count)
    {
        if (count < 0)
        {
            count = long.MaxValue;
        }

        if (old.Length == 0)
        {
            var points = CodePoints(s);
            var builder = new StringBuilder();
            long done = 0;
            for (var i = 0; i <= points.Length; i++)
            {
                if (done < count)
                {
                    builder.Append(replacement);
                    done++;
                }

                if (i < points.Length)
                {
                    builder.Append(points[i]);
                }
            }

            return builder.ToString();
        }

        var result = new StringBuilder();
        var start = 0;
        long replaced = 0;
        while (replaced < count)
        {
            var at = s.IndexOf(old, start, StringComparison.Ordinal);
            if (at < 0)
            {
                break;
            }

            result.Append(s, start, at - start).Append(replacement);
            start = at + old.Length;
            replaced++;
        }

        return result.Append(s, start, s.Length - start).ToString();
    }

    // Characters whose upper (and title) case is more than one character; .NET maps each char to one.
    private static readonly Dictionary<char, (string Upper, string Title)> s_multiCharUpper = new()
    {
        ['\u00DF'] = ("SS", "Ss"),
        ['\u0149'] = ("\u02BCN", "\u02BCN"),
        ['\u01F0'] = ("J\u030C", "J\u030C"),
        ['\uFB00'] = ("FF", "Ff"),
        ['\uFB01'] = ("FI", "Fi"),
        ['\uFB02'] = ("FL", "Fl"),
        ['\uFB03'] = ("FFI", "Ffi"),
        ['\uFB04'] = ("FFL", "Ffl"),
        ['\uFB05'] = ("ST", "St"),
        ['\uFB06'] = ("ST", "St"),
    };

    /// <summary>Python's str.upper (full case mapping for the common multi-character cases such as ß).</summary>
    public static string Upper(string s) => MapUpper(s, title: false);

    private static string MapUpper(string s, bool title)
    {
        if (s.AsSpan().IndexOfAnyInRange('\u00DF', '\uFB06') < 0 || !s.Any(s_multiCharUpper.ContainsKey))
        {
            return s.ToUpperInvariant();
        }

        var builder = new StringBuilder(s.Length + 4);
        foreach (var c in s)
        {
            builder.Append(s_multiCharUpper.TryGetValue(c, out var special) ? (title ? special.Title : special.Upper) : char.ToUpperInvariant(c).ToString());
        }

        return builder.ToString();
    }

    /// <summary>Python's str.lower (İ becomes i followed by a combining dot, as in Python).</summary>
    public static string Lower(string s) => s.Replace("\u0130", "i\u0307", StringComparison.Ordinal).ToLowerInvariant();

    public static string Capitalize(string s)
    {
        if (s.Length == 0)
        {
            return s;
        }

        var first = char.IsHighSurrogate(s[0]) && s.Length > 1 ? s[..2] : s[..1];
        return MapUpper(first, title: true) + Lower(s[first.Length..]);
    }

    /// <summary>Python's str.title: a cased letter after an uncased character starts a word.</summary>
    public static string Title(string s)
    {
        var builder = new StringBuilder(s.Length);
        var previousCased = false;
        foreach (var rune in s.EnumerateRunes())
        {
            var text = rune.ToString();
            builder.Append(previousCased ? Lower(text) : MapUpper(text, title: true));
            previousCased = Rune.IsLetter(rune) && (Rune.IsUpper(rune) || Rune.IsLower(rune) || Rune.GetUnicodeCategory(rune) == UnicodeCategory.TitlecaseLetter);
        }

        return builder.ToString();
    }

    /// <summary>Python's str.islower / str.isupper: some cased character, and none of the other case.</summary>
    public static bool IsCased(string s, bool lower)
    {
        var anyCased = false;
        foreach (var rune in s.EnumerateRunes())
        {
            if (Rune.IsUpper(rune) || Rune.IsLower(rune))
            {
                if (Rune.IsUpper(rune) == lower)
                {
                    return false;
                }

                anyCased = true;
            }
        }

        return anyCased;
    }

    /// <summary>The code-point index of the first (or last) occurrence, or -1.</summary>
    public static long Find(string s, string sub, bool last)
    {
        var at = last ? s.LastIndexOf(sub, StringComparison.Ordinal) : s.IndexOf(sub, StringComparison.Ordinal);
        return at < 0 ? -1 : Length(s[..at]);
    }

    public static long Count(string s, string sub)
    {
        if (sub.Length == 0)
        {
            return Length(s) + 1;
        }

        long count = 0;
        for (var at = s.IndexOf(sub, StringComparison.Ordinal); at >= 0; at = s.IndexOf(sub, at + sub.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    /// <summary>
    /// str.format: <c>{}</c>, <c>{0}</c> and <c>{name}</c> fields with an optional <c>!r</c>/<c>!s</c> conversion and
    /// <c>:spec</c> (see <see cref="PyFormat.Spec"/>), and <c>{{ }}</c> escapes; fields with attributes or indexes are not supported.
    /// </summary>
    public static string Format(string format, CallArguments arguments)
    {
        var builder = new StringBuilder();
        var next = 0;
        for (var i = 0; i < format.Length; i++)
        {
            var c = format[i];
            if (c == '{' && i + 1 < format.Length && format[i + 1] == '{')
            {
                builder.Append('{');
                i++;
            }
            else if (c == '}' && i + 1 < format.Length && format[i + 1] == '}')
            {
                builder.Append('}');
                i++;
            }
            else if (c == '{')
            {
                var close = format.IndexOf('}', i);
                if (close < 0)
                {
                    throw new ChatTemplateException("Single '{' encountered in format string");
                }

                var field = format[(i + 1)..close];
                var spec = string.Empty;
                var colon = field.IndexOf(':', StringComparison.Ordinal);
                if (colon >= 0)
                {
                    spec = field[(colon + 1)..];
                    field = field[..colon];
                }

                var conversion = '\0';
                if (field.Length >= 2 && field[^2] == '!')
                {
                    conversion = field[^1];
                    field = field[..^2];
                }

                if (field.IndexOfAny(['.', '[']) >= 0 || conversion is not ('\0' or 'r' or 's' or 'a'))
                {
                    throw new ChatTemplateException($"format field '{{{format[(i + 1)..close]}}}' is not supported");
                }

                object? value;
                if (field.Length == 0)
                {
                    value = next < arguments.Positional.Count ? arguments.Positional[next++] : throw new ChatTemplateException("Replacement index out of range for positional args tuple");
                }
                else if (int.TryParse(field, NumberStyles.None, CultureInfo.InvariantCulture, out var index))
                {
                    value = index < arguments.Positional.Count ? arguments.Positional[index] : throw new ChatTemplateException($"Replacement index {index} out of range for positional args tuple");
                }
                else
                {
                    var found = arguments.Named.FindIndex(p => p.Key == field);
                    value = found >= 0 ? arguments.Named[found].Value : throw new ChatTemplateException($"'{field}'");
                }

                if (conversion != '\0')
                {
                    value = conversion == 's' ? PyOps.Str(value) : PyOps.Repr(value);
                }

                builder.Append(PyFormat.Spec(value, spec));
                i = close;
            }
            else if (c == '}')
            {
                throw new ChatTemplateException("Single '}' encountered in format string");
            }
            else
            {
                builder.Append(c);
            }
        }

        return builder.ToString();
    }
}

/// <summary>Python's slice.indices: which positions <c>[start:stop:step]</c> selects from a sequence of a given length.</summary>
internal static class Slicing
{
    public static IEnumerable<int> Indices(int length, long? start, long? stop, long? step)
    {
        var s = step ?? 1;
        if (s == 0)
        {
            throw new ChatTemplateException("slice step cannot be zero");
        }

        long Clamp(long? value, long fallback, long low, long high)
        {
            if (value is not { } v)
            {
                return fallback;
            }

            if (v < 0)
            {
                v += length;
            }

            return Math.Min(Math.Max(v, low), high);
        }

        if (s > 0)
        {
            var from = Clamp(start, 0, 0, length);
            var to = Clamp(stop, length, 0, length);
            for (var i = from; i < to; i += s)
            {
                yield return (int)i;
            }
        }
        else
        {
            var from = Clamp(start, length - 1, -1, length - 1);
            var to = Clamp(stop, -1, -1, length - 1);
            for (var i = from; i > to; i += s)
            {
                yield return (int)i;
            }
        }
    }
}
