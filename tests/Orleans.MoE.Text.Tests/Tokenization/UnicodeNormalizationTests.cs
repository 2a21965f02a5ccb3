using System.Globalization;
using System.Text.Json;
using Orleans.MoE.Text.Tokenization;

namespace Orleans.MoE.Text.Tests.Tokenization;

/// <summary>
/// NFC, NFD, NFKC and NFKD as the reference library computes them (Reference/normalization.cases.json:
/// every code point NFC changes, a sample of those NFKC changes, random sequences of starters,
/// combining marks and Hangul jamo).
/// </summary>
public sealed class UnicodeNormalizationTests
{
    [Fact]
    public void Matches_the_reference_on_every_case()
    {
        var path = Path.Combine(TokenizerCaseTests.ReferenceDirectory, "normalization.cases.json");
        var cases = JsonDocument.Parse(File.ReadAllText(path)).RootElement.GetProperty("cases");
        var failures = new List<string>();
        foreach (var entry in cases.EnumerateArray())
        {
            var values = entry.EnumerateArray().Select(v => v.GetString()!).ToArray();
            var (input, nfc, nfd, nfkc, nfkd) = (values[0], values[1], values[2], values[3], values[4]);
            Check("NFC", UnicodeNormalization.Normalize(input, compatibility: false, compose: true), nfc);
            Check("NFD", UnicodeNormalization.Normalize(input, compatibility: false, compose: false), nfd);
            Check("NFKC", UnicodeNormalization.Normalize(input, compatibility: true, compose: true), nfkc);
            Check("NFKD", UnicodeNormalization.Normalize(input, compatibility: true, compose: false), nfkd);

            void Check(string form, string actual, string expected)
            {
                if (actual != expected)
                {
                    failures.Add($"{form}({Hex(input)}) = {Hex(actual)}, expected {Hex(expected)}");
                }
            }
        }

        Assert.True(cases.GetArrayLength() > 2000);
        Assert.Empty(failures);
    }

    [Theory]
    [InlineData("e\u0301", "\u00e9")]
    [InlineData("\u1100\u1161\u11a8", "\uac01")]
    [InlineData("a\u0323\u0307", "\u1ea1\u0307")]
    [InlineData("\u212b", "\u00c5")]
    [InlineData("plain ascii", "plain ascii")]
    public void Composes_canonically(string input, string expected)
    {
        Assert.Equal(expected, UnicodeNormalization.Normalize(input, compatibility: false, compose: true));
    }

    [Fact]
    public void The_regex_stand_ins_have_their_categories()
    {
        Assert.All(CodePointRegex.StandIns, pair => Assert.Equal(pair.Key, CharUnicodeInfo.GetUnicodeCategory(pair.Value)));
    }

    private static string Hex(string s) => string.Join(' ', s.EnumerateRunes().Select(r => r.Value.ToString("X4", CultureInfo.InvariantCulture)));
}
