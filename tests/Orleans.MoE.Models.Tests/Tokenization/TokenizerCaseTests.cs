using System.Text.Json;
using Orleans.MoE.Models.Tokenization;

namespace Orleans.MoE.Models.Tests.Tokenization;

/// <summary>Every case the Hugging Face tokenizers library produced, reproduced exactly.</summary>
public sealed class TokenizerCaseTests
{
    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var (name, _, casesPath) in Sources())
        {
            var count = JsonDocument.Parse(File.ReadAllText(casesPath)).RootElement.GetProperty("cases").GetArrayLength();
            for (var i = 0; i < count; i++)
            {
                data.Add(name, i);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Encodes_and_decodes_as_the_reference(string source, int index)
    {
        var (tokenizer, expected) = Load(source, index);
        var text = expected.GetProperty("text").GetString()!;
        var ids = Ints(expected.GetProperty("ids"));

        Assert.Equal(ids, tokenizer.Encode(text, addSpecialTokens: true));
        Assert.Equal(Strings(expected.GetProperty("tokens")), tokenizer.EncodeToTokens(text, addSpecialTokens: true));
        if (expected.TryGetProperty("ids_no_special", out var noSpecial))
        {
            Assert.Equal(Ints(noSpecial), tokenizer.Encode(text, addSpecialTokens: false));
        }

        Assert.Equal(expected.GetProperty("decoded").GetString(), tokenizer.Decode(ids, skipSpecialTokens: true));
        if (expected.TryGetProperty("decoded_keep_special", out var keep))
        {
            Assert.Equal(keep.GetString(), tokenizer.Decode(ids, skipSpecialTokens: false));
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Streaming_decode_adds_up_to_the_whole_decode(string source, int index)
    {
        var (tokenizer, expected) = Load(source, index);
        var ids = Ints(expected.GetProperty("ids"));
        foreach (var skip in new[] { true, false })
        {
            var decoder = tokenizer.CreateStreamingDecoder(skip);
            var pieces = ids.Select(decoder.Push).ToList();
            pieces.Add(decoder.Flush());
            Assert.Equal(tokenizer.Decode(ids, skip), string.Concat(pieces));
            Assert.DoesNotContain(pieces.SkipLast(1), p => p.EndsWith('\uFFFD'));
        }
    }

    private static IEnumerable<(string Name, string Tokenizer, string Cases)> Sources()
    {
        foreach (var name in new[] { "sentencepiece-bpe", "bytelevel-regex-split" })
        {
            var directory = Path.Combine(RepositoryPaths.Fixtures, "tokenizers", name);
            yield return (name, Path.Combine(directory, "tokenizer.json"), Path.Combine(directory, "cases.json"));
        }

        yield return ("moe-tiny-py", Path.Combine(RepositoryPaths.DemoModel, "tokenizer.json"), Path.Combine(RepositoryPaths.DemoModel, "tokenizer-cases.json"));
    }

    private static readonly Dictionary<string, Tokenizer> s_tokenizers = [];

    private static (Tokenizer Tokenizer, JsonElement Case) Load(string source, int index)
    {
        var (_, tokenizerPath, casesPath) = Sources().Single(s => s.Name == source);
        Tokenizer tokenizer;
        lock (s_tokenizers)
        {
            if (!s_tokenizers.TryGetValue(source, out tokenizer!))
            {
                tokenizer = s_tokenizers[source] = Tokenizer.Load(tokenizerPath);
            }
        }

        return (tokenizer, JsonDocument.Parse(File.ReadAllText(casesPath)).RootElement.GetProperty("cases")[index]);
    }

    private static int[] Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32()).ToArray();

    private static string[] Strings(JsonElement array) => array.EnumerateArray().Select(e => e.GetString()!).ToArray();
}
