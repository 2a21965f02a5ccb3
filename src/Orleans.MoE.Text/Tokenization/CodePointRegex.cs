using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Orleans.MoE.Text.Tokenization;

/// <summary>
/// A pattern of the reference's regex engine (Oniguruma, which matches code points) run with .NET's
/// <see cref="Regex"/> (which matches UTF-16 units). The pattern is translated by
/// <see cref="OnigurumaPattern"/>; characters outside the BMP are replaced, for matching only, by one
/// BMP character of the same general category (so <c>\p{L}</c> sees 𝔘 as one letter, and
/// <c>[A-Za-z]</c> does not), and match positions are mapped back. Matches follow Oniguruma's
/// iteration: an empty match right where the previous match ended is skipped.
/// </summary>
internal sealed class CodePointRegex : TextPattern
{
    /// <summary>One rarely used BMP character per general category, standing in for characters outside the BMP.</summary>
    internal static readonly IReadOnlyDictionary<UnicodeCategory, char> StandIns = new Dictionary<UnicodeCategory, char>
    {
        [UnicodeCategory.UppercaseLetter] = '\u2C00',
        [UnicodeCategory.LowercaseLetter] = '\u2C30',
        [UnicodeCategory.TitlecaseLetter] = '\u1F88',
        [UnicodeCategory.ModifierLetter] = '\uA015',
        [UnicodeCategory.OtherLetter] = '\uA840',
        [UnicodeCategory.NonSpacingMark] = '\u1DC0',
        [UnicodeCategory.SpacingCombiningMark] = '\uA823',
        [UnicodeCategory.EnclosingMark] = '\u20DD',
        [UnicodeCategory.DecimalDigitNumber] = '\uA8D0',
        [UnicodeCategory.LetterNumber] = '\u16EE',
        [UnicodeCategory.OtherNumber] = '\u2CFD',
        [UnicodeCategory.ConnectorPunctuation] = '\uFE4D',
        [UnicodeCategory.DashPunctuation] = '\u2E1A',
        [UnicodeCategory.OpenPunctuation] = '\u2E22',
        [UnicodeCategory.ClosePunctuation] = '\u2E23',
        [UnicodeCategory.InitialQuotePunctuation] = '\u2E0C',
        [UnicodeCategory.FinalQuotePunctuation] = '\u2E0D',
        [UnicodeCategory.OtherPunctuation] = '\u2E2E',
        [UnicodeCategory.MathSymbol] = '\u2A00',
        [UnicodeCategory.CurrencySymbol] = '\u20A0',
        [UnicodeCategory.ModifierSymbol] = '\uA700',
        [UnicodeCategory.OtherSymbol] = '\u2B00',
        [UnicodeCategory.Format] = '\u2061',
        [UnicodeCategory.PrivateUse] = '\uE000',
        [UnicodeCategory.OtherNotAssigned] = '\u0378',
    };

    private readonly Regex _regex;

    /// <param name="pattern">The pattern as written in tokenizer.json.</param>
    /// <param name="role">The component using it, for errors.</param>
    public CodePointRegex(string pattern, string source, string role)
    {
        string translated;
        try
        {
            translated = OnigurumaPattern.ToDotNet(pattern);
        }
        catch (NotSupportedException e)
        {
            throw new TokenizerFormatException($"{source}: {role} regex '{pattern}' is not supported: {e.Message}", e);
        }

        try
        {
            _regex = new Regex(translated, RegexOptions.Compiled | RegexOptions.CultureInvariant | RegexOptions.Multiline, Regex.InfiniteMatchTimeout);
        }
        catch (ArgumentException e)
        {
            throw new TokenizerFormatException($"{source}: {role} regex '{pattern}' is not supported: {e.Message}", e);
        }
    }

    /// <summary>The [start, end) ranges of every match, in <paramref name="text"/>'s UTF-16 indices; empty matches included.</summary>
    public override List<(int Start, int End)> Matches(string text)
    {
        var (subject, map) = Substitute(text);
        var result = new List<(int, int)>();
        var previousEnd = -1;
        for (var match = _regex.Match(subject); match.Success; match = match.NextMatch())
        {
            var start = match.Index;
            var end = match.Index + match.Length;
            if (start == end && start == previousEnd)
            {
                continue;
            }

            previousEnd = end;
            result.Add(map is null ? (start, end) : (map[start], map[end]));
        }

        return result;
    }

    /// <summary>The stand-in of a character outside the BMP; the squared and circled Latin letters (symbols that are alphabetic, so word characters) as Ⓐ.</summary>
    private static char StandIn(int codePoint) =>
        codePoint is (>= 0x1F130 and <= 0x1F149) or (>= 0x1F150 and <= 0x1F169) or (>= 0x1F170 and <= 0x1F189)
            ? '\u24B6'
            : StandIns.TryGetValue(CharUnicodeInfo.GetUnicodeCategory(codePoint), out var standIn) ? standIn : StandIns[UnicodeCategory.OtherNotAssigned];

    private static (string Subject, int[]? Map) Substitute(string text)
    {
        var firstSurrogate = text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF');
        if (firstSurrogate < 0)
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
                subject.Append(StandIn(char.ConvertToUtf32(text[i], text[i + 1])));
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
}
