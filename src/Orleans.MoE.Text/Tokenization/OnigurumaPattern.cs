using System.Globalization;
using System.Text;

namespace Orleans.MoE.Text.Tokenization;

/// <summary>
/// Translates a pattern written for the reference's regex engine (Oniguruma, Ruby syntax) to .NET
/// syntax with the same meaning: <c>(?m)</c> is .NET's <c>(?s)</c>, <c>^</c>/<c>$</c> are line anchors
/// (the caller sets Multiline), <c>(?i)</c> groups the rest of its group (alternatives included),
/// <c>\w</c> and <c>\b</c> follow Oniguruma's word characters,
/// <c>\h</c> is a hex digit, <c>{,n}</c> is <c>{0,n}</c>, possessive <c>x*+</c> becomes an atomic
/// group, <c>x{n,m}+</c> repeats and <c>x{n}?</c> makes optional the interval (Ruby's reading),
/// comments are dropped, <c>\x{...}</c> and <c>\p{^...}</c> are rewritten.
/// Constructs .NET would read differently (POSIX brackets, class intersection, nested classes,
/// script properties, characters outside the BMP) are refused rather than mistranslated.
/// </summary>
internal static class OnigurumaPattern
{
    /// <summary>
    /// Oniguruma's Unicode \w: alphabetic (letters, letter numbers, the circled letters), marks,
    /// decimal digits, connector punctuation, and in Latin-1 also ² ³ ¹ ¼ ½ ¾.
    /// </summary>
    private const string WordClass = @"\p{L}\p{M}\p{Nd}\p{Nl}\p{Pc}\u00B2\u00B3\u00B9\u00BC-\u00BE\u24B6-\u24E9";

    private const string CaseInsensitiveS = "[sS\u017F]";

    private static readonly Dictionary<string, string> s_categories = BuildCategories();

    /// <summary>The ignore-case state after option letters such as "i", "-i", "ix-s".</summary>
    private static bool WithOptions(bool ignoreCase, string? options)
    {
        if (options is null)
        {
            return ignoreCase;
        }

        var dash = options.IndexOf('-', StringComparison.Ordinal);
        var on = dash < 0 ? options : options[..dash];
        var off = dash < 0 ? "" : options[dash..];
        return !off.Contains('i', StringComparison.Ordinal) && (ignoreCase || on.Contains('i', StringComparison.Ordinal));
    }

    /// <exception cref="NotSupportedException">The pattern uses a construct with no exact .NET equivalent.</exception>
    public static string ToDotNet(string pattern)
    {
        var output = new StringBuilder(pattern.Length + 16);
        var groups = new Stack<int>();

        // An isolated option group "(?i)" applies to the rest of its enclosing group, alternatives
        // included, as a group of its own: a(?i)b|c is a(?i:b|c). Each opens a group closed with the
        // enclosing one; the counts are per nesting level (index 0: the whole pattern).
        var deferredClosers = new List<int> { 0 };

        // Whether case is ignored here, and outside each open group.
        var ignoreCase = false;
        var outerIgnoreCase = new Stack<bool>();
        var atomStart = -1;
        var i = 0;
        while (i < pattern.Length)
        {
            var c = pattern[i];
            if (char.IsSurrogate(c))
            {
                throw new NotSupportedException("characters outside the Basic Multilingual Plane");
            }

            switch (c)
            {
                case '\\':
                    atomStart = output.Length;
                    i = Escape(pattern, i, output, inClass: false);
                    break;
                case '[':
                    atomStart = output.Length;
                    i = CharacterClass(pattern, i, output, ignoreCase);
                    break;
                case '(':
                    var groupStart = output.Length;
                    (i, var kind, var options) = GroupOpening(pattern, i, output);
                    if (kind == Group.Open)
                    {
                        groups.Push(groupStart);
                        deferredClosers.Add(0);
                        outerIgnoreCase.Push(ignoreCase);
                        ignoreCase = WithOptions(ignoreCase, options);
                        atomStart = -1;
                    }
                    else if (kind == Group.Options)
                    {
                        output[^1] = ':';
                        deferredClosers[^1]++;
                        ignoreCase = WithOptions(ignoreCase, options);
                        atomStart = -1;
                    }

                    // A comment is transparent: a quantifier after it applies to the atom before it.
                    break;
                case ')':
                    atomStart = groups.Count > 0 ? groups.Pop() : throw new NotSupportedException("unbalanced ')'");
                    output.Append(')', deferredClosers[^1] + 1);
                    deferredClosers.RemoveAt(deferredClosers.Count - 1);
                    ignoreCase = outerIgnoreCase.Pop();
                    i++;
                    break;
                case '*' or '+' or '?':
                    i = Quantifier(pattern, i, i + 1, output, atomStart);
                    atomStart = -1;
                    break;
                case '{' when Interval(pattern, i) is { } interval:
                    output.Append(interval.Text);
                    i = Quantifier(pattern, i, interval.End, output, atomStart, interval.Text);
                    atomStart = -1;
                    break;
                case '{' or '}':
                    atomStart = output.Length;
                    output.Append('\\').Append(c);
                    i++;
                    break;
                case 's' or 'S' when ignoreCase:
                    // Oniguruma folds ſ (U+017F) to s; .NET's ignore-case does not.
                    atomStart = output.Length;
                    output.Append(CaseInsensitiveS);
                    i++;
                    break;
                default:
                    atomStart = c is '^' or '$' or '|' ? -1 : output.Length;
                    output.Append(c);
                    i++;
                    break;
            }
        }

        return output.Append(')', deferredClosers[0]).ToString();
    }

    /// <summary>
    /// Copies a quantifier whose text runs from <paramref name="start"/> to <paramref name="end"/>
    /// (for an interval, already written as <paramref name="intervalText"/>), handling a following
    /// '+' (possessive, or for an interval a repeat) and '?' (lazy).
    /// </summary>
    private static int Quantifier(string pattern, int start, int end, StringBuilder output, int atomStart, string? intervalText = null)
    {
        if (atomStart < 0)
        {
            throw new NotSupportedException($"quantifier '{pattern[start]}' without an operand");
        }

        var quantifier = intervalText ?? pattern[start].ToString();
        if (intervalText is null)
        {
            output.Append(quantifier);
        }

        if (end < pattern.Length && pattern[end] == '+')
        {
            // x*+ is possessive; x{n,m}+ is (x{n,m})+ in Ruby syntax.
            output.Insert(atomStart, intervalText is null ? "(?>" : "(?:");
            output.Append(intervalText is null ? ")" : ")+");
            return end + 1;
        }

        if (end < pattern.Length && pattern[end] == '?')
        {
            // x{n}? is (x{n})? in Ruby syntax; other quantifiers followed by '?' are lazy.
            if (intervalText is not null && !intervalText.Contains(',', StringComparison.Ordinal))
            {
                output.Insert(atomStart, "(?:");
                output.Append(")?");
            }
            else
            {
                output.Append('?');
            }

            return end + 1;
        }

        return end;
    }

    /// <summary>A valid interval quantifier at <paramref name="start"/> ('{' n? (',' m?)? '}'), in .NET form.</summary>
    private static (string Text, int End)? Interval(string pattern, int start)
    {
        var close = pattern.IndexOf('}', start);
        if (close < 0)
        {
            return null;
        }

        var body = pattern[(start + 1)..close];
        var parts = body.Split(',');
        if (parts.Length > 2 || parts.Any(p => p.Any(ch => !char.IsAsciiDigit(ch))) || parts[0].Length == 0 && (parts.Length == 1 || parts[1].Length == 0))
        {
            return null;
        }

        var text = parts.Length == 1 ? $"{{{parts[0]}}}" : $"{{{(parts[0].Length == 0 ? "0" : parts[0])},{parts[1]}}}";
        return (text, close + 1);
    }

    private enum Group
    {
        /// <summary>A group that a later ')' closes.</summary>
        Open,

        /// <summary>(?imx-imx): options for the rest of the enclosing group, already closed.</summary>
        Options,

        /// <summary>(?#...): dropped.</summary>
        Comment,
    }

    private static (int Next, Group Kind, string? Options) GroupOpening(string pattern, int i, StringBuilder output)
    {
        if (i + 1 >= pattern.Length || pattern[i + 1] != '?')
        {
            output.Append('(');
            return (i + 1, Group.Open, null);
        }

        var rest = pattern.AsSpan(i + 2);
        if (rest.StartsWith("#", StringComparison.Ordinal))
        {
            var end = pattern.IndexOf(')', i);
            return end >= 0 ? (end + 1, Group.Comment, null) : throw new NotSupportedException("unterminated comment");
        }

        foreach (var prefix in new[] { ":", "=", "!", "<=", "<!", ">" })
        {
            if (rest.StartsWith(prefix, StringComparison.Ordinal))
            {
                output.Append("(?").Append(prefix);
                return (i + 2 + prefix.Length, Group.Open, null);
            }
        }

        if (rest.Length > 0 && (rest[0] == '<' || rest[0] == '\''))
        {
            // Named group (?<name>...) / (?'name'...): same in .NET.
            output.Append("(?");
            return (i + 2, Group.Open, null);
        }

        // Options: (?imx-imx) or (?imx-imx:...). Ruby's 'm' is .NET's 's' (dot matches newline).
        var j = i + 2;
        output.Append("(?");
        while (j < pattern.Length && pattern[j] is not (')' or ':'))
        {
            output.Append(pattern[j] switch
            {
                'i' or 'x' or '-' => pattern[j],
                'm' => 's',
                _ => throw new NotSupportedException($"group option '{pattern[j]}'"),
            });
            j++;
        }

        if (j >= pattern.Length)
        {
            throw new NotSupportedException("unterminated group options");
        }

        output.Append(pattern[j]);
        return (j + 1, pattern[j] == ')' ? Group.Options : Group.Open, pattern[(i + 2)..j]);
    }

    private static int CharacterClass(string pattern, int i, StringBuilder output, bool ignoreCase)
    {
        var includesS = false;
        output.Append('[');
        i++;
        if (i < pattern.Length && pattern[i] == '^')
        {
            output.Append('^');
            i++;
        }

        var first = true;
        while (i < pattern.Length)
        {
            var c = pattern[i];
            if (char.IsSurrogate(c))
            {
                throw new NotSupportedException("characters outside the Basic Multilingual Plane");
            }

            if (c == ']' && !first)
            {
                // Oniguruma folds ſ (U+017F) to s; .NET's ignore-case does not.
                output.Append(ignoreCase && includesS ? "\u017F]" : "]");
                return i + 1;
            }

            if (i + 2 < pattern.Length && pattern[i + 1] == '-' && pattern[i + 2] != ']' && c != '\\' && pattern[i + 2] != '\\')
            {
                includesS |= (c <= 's' && pattern[i + 2] >= 's') || (c <= 'S' && pattern[i + 2] >= 'S');
            }
            else
            {
                includesS |= c is 's' or 'S';
            }

            first = false;
            switch (c)
            {
                case '\\':
                    i = Escape(pattern, i, output, inClass: true);
                    break;
                case '[':
                    throw new NotSupportedException("nested character classes and POSIX brackets");
                case '&' when i + 1 < pattern.Length && pattern[i + 1] == '&':
                    throw new NotSupportedException("character class intersection '&&'");
                case ']':
                    output.Append(@"\]");
                    i++;
                    break;
                default:
                    output.Append(c);
                    i++;
                    break;
            }
        }

        throw new NotSupportedException("unterminated character class");
    }

    private static int Escape(string pattern, int i, StringBuilder output, bool inClass)
    {
        if (i + 1 >= pattern.Length)
        {
            throw new NotSupportedException("pattern ends with '\\'");
        }

        var e = pattern[i + 1];
        switch (e)
        {
            case 'p' or 'P':
                return Property(pattern, i, output, inClass);
            case 'x' when i + 2 < pattern.Length && pattern[i + 2] == '{':
                var close = pattern.IndexOf('}', i + 3);
                if (close < 0 || !int.TryParse(pattern.AsSpan(i + 3, close - i - 3), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var codePoint))
                {
                    throw new NotSupportedException("malformed \\x{...}");
                }

                if (codePoint > 0xFFFF || codePoint is >= 0xD800 and <= 0xDFFF)
                {
                    throw new NotSupportedException("characters outside the Basic Multilingual Plane");
                }

                output.Append(CultureInfo.InvariantCulture, $"\\u{codePoint:X4}");
                return close + 1;
            case 'h':
                output.Append(inClass ? "0-9a-fA-F" : "[0-9a-fA-F]");
                return i + 2;
            case 'w':
                output.Append(inClass ? WordClass : $"[{WordClass}]");
                return i + 2;
            case 'H' or 'W' when !inClass:
                output.Append(e == 'H' ? "[^0-9a-fA-F]" : $"[^{WordClass}]");
                return i + 2;
            case 'b' or 'B' when !inClass:
                // Word boundaries by the reference's \w.
                var boundary = $"(?:(?<=[{WordClass}])(?![{WordClass}])|(?<![{WordClass}])(?=[{WordClass}]))";
                output.Append(e == 'b' ? boundary : $"(?!{boundary})");
                return i + 2;
            case 'H' or 'W' or 'K' or 'R' or 'X' or 'N' or 'O' or 'g' or 'y' or 'Y' or 'o' or 'C' or 'M' or 'Q' or 'E':
                throw new NotSupportedException($"escape '\\{e}'{(inClass ? " in a character class" : "")}");
            default:
                if (char.IsSurrogate(e))
                {
                    throw new NotSupportedException("characters outside the Basic Multilingual Plane");
                }

                output.Append('\\').Append(e);
                return i + 2;
        }
    }

    private static int Property(string pattern, int i, StringBuilder output, bool inClass)
    {
        var negated = pattern[i + 1] == 'P';
        if (i + 2 >= pattern.Length || pattern[i + 2] != '{')
        {
            throw new NotSupportedException($"\\{pattern[i + 1]} without braces");
        }

        var close = pattern.IndexOf('}', i + 3);
        if (close < 0)
        {
            throw new NotSupportedException("unterminated \\p{...}");
        }

        var name = pattern[(i + 3)..close];
        if (name.StartsWith('^'))
        {
            negated = !negated;
            name = name[1..];
        }

        var key = name.Replace("_", "", StringComparison.Ordinal).Replace(" ", "", StringComparison.Ordinal).Replace("-", "", StringComparison.Ordinal).ToUpperInvariant();
        if (!s_categories.TryGetValue(key, out var categories))
        {
            throw new NotSupportedException($"property '\\p{{{name}}}' (only general categories are translated)");
        }

        var escapes = string.Concat(categories.Split(',').Select(category => $@"\p{{{category}}}"));
        if (!negated)
        {
            output.Append(inClass || !categories.Contains(',', StringComparison.Ordinal) ? escapes : $"[{escapes}]");
        }
        else if (!categories.Contains(',', StringComparison.Ordinal))
        {
            output.Append(CultureInfo.InvariantCulture, $@"\P{{{categories}}}");
        }
        else if (!inClass)
        {
            output.Append(CultureInfo.InvariantCulture, $"[^{escapes}]");
        }
        else
        {
            throw new NotSupportedException($"negated property '{name}' inside a character class");
        }

        return close + 1;
    }

    private static Dictionary<string, string> BuildCategories()
    {
        var categories = new Dictionary<string, string>(StringComparer.Ordinal);
        void Add(string shortName, string longName, string value)
        {
            categories[shortName.ToUpperInvariant()] = value;
            categories[longName.Replace("_", "", StringComparison.Ordinal).ToUpperInvariant()] = value;
        }

        Add("L", "Letter", "L");
        Add("Lu", "Uppercase_Letter", "Lu");
        Add("Ll", "Lowercase_Letter", "Ll");
        Add("Lt", "Titlecase_Letter", "Lt");
        Add("Lm", "Modifier_Letter", "Lm");
        Add("Lo", "Other_Letter", "Lo");
        Add("LC", "Cased_Letter", "Lu,Ll,Lt");
        categories["L&"] = "Lu,Ll,Lt";
        Add("M", "Mark", "M");
        Add("Mn", "Nonspacing_Mark", "Mn");
        Add("Mc", "Spacing_Mark", "Mc");
        Add("Me", "Enclosing_Mark", "Me");
        Add("N", "Number", "N");
        Add("Nd", "Decimal_Number", "Nd");
        Add("Nl", "Letter_Number", "Nl");
        Add("No", "Other_Number", "No");
        Add("P", "Punctuation", "P");
        Add("Pc", "Connector_Punctuation", "Pc");
        Add("Pd", "Dash_Punctuation", "Pd");
        Add("Ps", "Open_Punctuation", "Ps");
        Add("Pe", "Close_Punctuation", "Pe");
        Add("Pi", "Initial_Punctuation", "Pi");
        Add("Pf", "Final_Punctuation", "Pf");
        Add("Po", "Other_Punctuation", "Po");
        Add("S", "Symbol", "S");
        Add("Sm", "Math_Symbol", "Sm");
        Add("Sc", "Currency_Symbol", "Sc");
        Add("Sk", "Modifier_Symbol", "Sk");
        Add("So", "Other_Symbol", "So");
        Add("Z", "Separator", "Z");
        Add("Zs", "Space_Separator", "Zs");
        Add("Zl", "Line_Separator", "Zl");
        Add("Zp", "Paragraph_Separator", "Zp");
        Add("C", "Other", "C");
        Add("Cc", "Control", "Cc");
        Add("Cf", "Format", "Cf");
        Add("Cs", "Surrogate", "Cs");
        Add("Co", "Private_Use", "Co");
        Add("Cn", "Unassigned", "Cn");
        return categories;
    }
}
