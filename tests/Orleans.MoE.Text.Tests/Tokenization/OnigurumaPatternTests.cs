using System.Text.Json;
using Orleans.MoE.Text.Tokenization;

namespace Orleans.MoE.Text.Tests.Tokenization;

/// <summary>Pre-tokenizer regexes (Oniguruma, Ruby syntax) translated to .NET with the same meaning, or refused.</summary>
public sealed class OnigurumaPatternTests
{
    [Theory]
    [InlineData(@"\p{L}+", @"\p{L}+")]
    [InlineData(@"[^\r\n\p{L}\p{N}]?\p{L}+", @"[^\r\n\p{L}\p{N}]?\p{L}+")]
    [InlineData(@"(?i:'s|'t)", "(?i:'[sS\u017F]|'t)")]
    [InlineData(@"(?i)[a-z]s(?-i)s", "(?i:[a-z\u017F][sS\u017F](?-i:s))")]
    [InlineData(@"(?m:a.b)", @"(?s:a.b)")]
    [InlineData(@"a{,2}", @"a{0,2}")]
    [InlineData(@"\p{L}++", @"(?>\p{L}+)")]
    [InlineData(@"(ab)*+", @"(?>(ab)*)")]
    [InlineData(@"a{1,2}+", @"(?:a{1,2})+")]
    [InlineData(@"\h+", @"[0-9a-fA-F]+")]
    [InlineData(@"\w", @"[\p{L}\p{M}\p{Nd}\p{Nl}\p{Pc}\u00B2\u00B3\u00B9\u00BC-\u00BE\u24B6-\u24E9]")]
    [InlineData(@"\p{^L}", @"\P{L}")]
    [InlineData(@"\p{Letter}\p{Decimal_Number}", @"\p{L}\p{Nd}")]
    [InlineData(@"\x{4E00}-", @"\u4E00-")]
    [InlineData(@"{x}", @"\{x\}")]
    [InlineData(@"\p{N}{1,3}", @"\p{N}{1,3}")]
    [InlineData(@"a{2}?b", @"(?:a{2})?b")]
    [InlineData(@"a{1,2}?b", @"a{1,2}?b")]
    [InlineData(@"x(?#note)+", @"x+")]
    [InlineData(@"(?i)a(b)*", @"(?i:a(b)*)")]
    [InlineData(@"a(?i)b|c", @"a(?i:b|c)")]
    [InlineData(@"(x(?-i)y|z)w", @"(x(?-i:y|z))w")]
    public void Translates(string oniguruma, string dotNet)
    {
        Assert.Equal(dotNet, OnigurumaPattern.ToDotNet(oniguruma));
    }

    [Theory]
    [InlineData(@"\p{Han}+", "property")]
    [InlineData(@"[[:alpha:]]", "POSIX")]
    [InlineData(@"[a-z&&[^aeiou]]", "intersection")]
    [InlineData(@"(?s:.)", "group option 's'")]
    [InlineData("\U0001F600+", "outside the Basic Multilingual Plane")]
    [InlineData(@"\x{1F600}", "outside the Basic Multilingual Plane")]
    [InlineData(@"\K", @"escape '\K'")]
    public void Refuses_what_it_cannot_translate_exactly(string oniguruma, string reason)
    {
        var error = Assert.Throws<TokenizerFormatException>(() => new CodePointRegex(oniguruma, "t.json", "pre_tokenizer Split"));
        Assert.Contains("t.json", error.Message);
        Assert.Contains("pre_tokenizer Split", error.Message);
        Assert.Contains(reason, error.Message);
    }

    [Fact]
    public void Characters_outside_the_BMP_match_as_one_character_of_their_category()
    {
        var regex = new CodePointRegex(@"[A-Za-z]+|\p{Lu}|\p{Nd}+|\p{So}", "t.json", "test");
        var text = "ab𝔘𝐀𝟎𝟏🙂";
        Assert.Equal(["ab", "𝔘", "𝐀", "𝟎𝟏", "🙂"], regex.Matches(text).Select(m => text[m.Start..m.End]));
    }

    public static TheoryData<int> ReferenceCases()
    {
        var data = new TheoryData<int>();
        for (var i = 0; i < LoadReferenceCases().GetArrayLength(); i++)
        {
            data.Add(i);
        }

        return data;
    }

    /// <summary>Model pre-tokenizer regexes (GPT-2, Qwen2, Llama 3, GPT-4o, DeepSeek V3) and edge cases split as the reference splits them (Reference/regex.cases.json).</summary>
    [Theory]
    [MemberData(nameof(ReferenceCases))]
    public void Splits_as_the_reference(int index)
    {
        var entry = LoadReferenceCases()[index];
        var (pattern, text) = (entry[0].GetString()!, entry[1].GetString()!);
        var regex = new CodePointRegex(pattern, "regex.cases.json", "test");
        var pieces = SplitBehavior.Apply(regex.Segments(text), SplitBehavior.Isolated).Where(p => p.End > p.Start).Select(p => text[p.Start..p.End]);
        Assert.Equal(entry[2].EnumerateArray().Select(p => p.GetString()!), pieces);
    }

    private static JsonElement LoadReferenceCases() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(TokenizerCaseTests.ReferenceDirectory, "regex.cases.json"))).RootElement.GetProperty("cases");

    [Fact]
    public void An_empty_match_where_the_previous_match_ended_is_skipped()
    {
        var regex = new CodePointRegex("x*", "t.json", "test");
        Assert.Equal([(0, 0), (1, 3), (4, 4)], regex.Matches("axxb"));
    }
}
