using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Orleans.MoE.Models.Tokenization;

/// <summary>
/// A pre-tokenizer regex (written for Rust's regex/Oniguruma, which match code points) run with .NET's
/// <see cref="Regex"/> (which matches UTF-16 units). Characters outside the BMP are replaced, for
/// matching only, by one BMP character of the same class (letter, number, other), so <c>\p{L}</c> sees
/// 𝔘 as a letter as the reference does; match positions are mapped back to the original text.
/// </summary>
internal sealed class CodePointRegex
{
    private readonly Regex _regex;

    public CodePointRegex(string pattern, string source)
    {
        try
        {
            _regex = new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant, TimeSpan.FromSeconds(5));
        }
        catch (ArgumentException e)
        {
            throw new TokenizerFormatException($"{source}: pre-tokenizer regex '{pattern}' is not supported: {e.Message}", e);
        }
    }

    /// <summary>The [start, end) ranges of every match, in <paramref name="text"/>'s UTF-16 indices.</summary>
    public List<(int Start, int End)> Matches(string text)
    {
        var (subject, map) = Substitute(text);
        var result = new List<(int, int)>();
        foreach (Match match in _regex.Matches(subject))
        {
            if (match.Length > 0)
            {
                result.Add(map is null ? (match.Index, match.Index + match.Length) : (map[match.Index], map[match.Index + match.Length]));
            }
        }

        return result;
    }

    private static (string Subject, int[]? Map) Substitute(string text)
    {
        if (!text.Any(char.IsSurrogate))
        {
            return (text, null);
        }

        var subject = new StringBuilder(text.Length);
        var map = new List<int>(text.Length + 1);
        for (var i = 0; i < text.Length; i++)
        {
            map.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                subject.Append(StandIn(CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]))));
                i++;
            }
            else
            {
                subject.Append(text[i]);
            }
        }

        map.Add(text.Length);
        return (subject.ToString(), [.. map]);
    }

    private static char StandIn(UnicodeCategory category) => category switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => 'a',
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => '0',
        _ => '\uE000',
    };
}
