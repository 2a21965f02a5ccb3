using System.Text.Json;

namespace Orleans.MoE.Text.Tokenization;

/// <summary>
/// A pattern of tokenizer.json (<c>{"String": ...}</c> or <c>{"Regex": ...}</c>) as the reference's
/// find_matches: the non-overlapping matches, left to right.
/// </summary>
internal abstract class TextPattern
{
    /// <summary>The [start, end) ranges of every match in <paramref name="text"/> (UTF-16 indices).</summary>
    public abstract List<(int Start, int End)> Matches(string text);

    /// <summary>The pattern in <paramref name="element"/>'s "pattern" property.</summary>
    public static TextPattern Create(JsonElement element, TokenizerJson json, string role)
    {
        var (text, isRegex) = json.Pattern(element, role);
        return isRegex ? new CodePointRegex(text, json.Source, role) : new Literal(text);
    }

    /// <summary>
    /// The pieces of <paramref name="text"/> in order, covering all of it: the gaps (IsMatch false) and the
    /// matches (IsMatch true, possibly empty), as the reference's Pattern::find_matches.
    /// </summary>
    public List<(int Start, int End, bool IsMatch)> Segments(string text, bool invert = false)
    {
        var segments = new List<(int, int, bool)>();
        if (text.Length == 0)
        {
            segments.Add((0, 0, invert));
            return segments;
        }

        var previous = 0;
        foreach (var (start, end) in Matches(text))
        {
            if (start != previous)
            {
                segments.Add((previous, start, invert));
            }

            segments.Add((start, end, !invert));
            previous = end;
        }

        if (previous != text.Length)
        {
            segments.Add((previous, text.Length, invert));
        }

        return segments;
    }

    /// <summary>A literal string, matched ordinally; an empty one matches nothing.</summary>
    private sealed class Literal(string literal) : TextPattern
    {
        public override List<(int Start, int End)> Matches(string text)
        {
            var result = new List<(int, int)>();
            if (literal.Length == 0)
            {
                return result;
            }

            for (var i = text.IndexOf(literal, StringComparison.Ordinal); i >= 0; i = text.IndexOf(literal, i + literal.Length, StringComparison.Ordinal))
            {
                result.Add((i, i + literal.Length));
            }

            return result;
        }
    }
}
