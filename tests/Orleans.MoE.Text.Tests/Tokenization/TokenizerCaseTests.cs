using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Orleans.MoE.Text.Tokenization;

namespace Orleans.MoE.Text.Tests.Tokenization;

/// <summary>
/// Every case the Hugging Face tokenizers library (0.23.2) produced, reproduced exactly: the three
/// fixture tokenizers (GPT-2 byte-level, Qwen-style regex split, SentencePiece-style byte fallback)
/// and the variants in Reference/ (base fixture + JSON merge patch, made by Reference/generate-cases.js).
/// </summary>
public sealed class TokenizerCaseTests
{
    private static readonly ConcurrentDictionary<string, (Tokenizer Tokenizer, JsonElement Cases)> s_sources = new();

    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var name in SourceNames())
        {
            var count = Load(name).Cases.GetArrayLength();
            for (var i = 0; i < count; i++)
            {
                data.Add(name, i);
            }
        }

        return data;
    }

    [Fact]
    public void Every_source_has_cases()
    {
        Assert.Equal(3 + Directory.GetFiles(ReferenceDirectory, "*.json").Length - 2, SourceNames().Count());
        Assert.All(SourceNames(), name => Assert.True(Load(name).Cases.GetArrayLength() >= 8, name));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Encodes_as_the_reference(string source, int index)
    {
        var (tokenizer, expected) = Case(source, index);
        var text = expected.GetProperty("text").GetString()!;

        Assert.Equal(Ints(expected.GetProperty("ids")), tokenizer.Encode(text, addSpecialTokens: true));
        Assert.Equal(Strings(expected.GetProperty("tokens")), tokenizer.EncodeToTokens(text, addSpecialTokens: true));
        if (expected.TryGetProperty("ids_no_special", out var noSpecial))
        {
            Assert.Equal(Ints(noSpecial), tokenizer.Encode(text, addSpecialTokens: false));
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decodes_as_the_reference(string source, int index)
    {
        var (tokenizer, expected) = Case(source, index);
        var ids = Ints(expected.GetProperty("ids"));

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
        var (tokenizer, expected) = Case(source, index);
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

    internal static string ReferenceDirectory => Path.Combine(RepositoryPaths.Root, "tests", "Orleans.MoE.Text.Tests", "Tokenization", "Reference");

    private static IEnumerable<string> SourceNames() =>
        new[] { "moe-tiny-py", "sentencepiece-bpe", "bytelevel-regex-split" }.Concat(
            Directory.GetFiles(ReferenceDirectory, "*.json")
                .Select(f => Path.GetFileNameWithoutExtension(f))
                .Where(n => !n.EndsWith(".cases", StringComparison.Ordinal))
                .Order(StringComparer.Ordinal));

    private static (Tokenizer Tokenizer, JsonElement Case) Case(string source, int index)
    {
        var (tokenizer, cases) = Load(source);
        return (tokenizer, cases[index]);
    }

    private static (Tokenizer Tokenizer, JsonElement Cases) Load(string name) => s_sources.GetOrAdd(name, static name =>
    {
        if (name == "moe-tiny-py")
        {
            return (Tokenizer.Load(Path.Combine(RepositoryPaths.DemoModel, "tokenizer.json")), CasesOf(Path.Combine(RepositoryPaths.DemoModel, "tokenizer-cases.json")));
        }

        var fixture = Path.Combine(RepositoryPaths.Fixtures, "tokenizers", name);
        if (Directory.Exists(fixture))
        {
            return (Tokenizer.Load(Path.Combine(fixture, "tokenizer.json")), CasesOf(Path.Combine(fixture, "cases.json")));
        }

        // A variant: the base fixture with a JSON merge patch applied.
        var variantPath = Path.Combine(ReferenceDirectory, name + ".json");
        var variant = JsonNode.Parse(File.ReadAllText(variantPath))!;
        var baseJson = JsonNode.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, variant["base"]!.GetValue<string>())));
        var patched = MergePatch(baseJson, variant["patch"]);
        return (Tokenizer.FromJson(patched!.ToJsonString(), variantPath), CasesOf(variantPath));
    });

    /// <summary>RFC 7396: objects merge, null removes, anything else replaces.</summary>
    private static JsonNode? MergePatch(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject patchObject)
        {
            return patch?.DeepClone();
        }

        var result = target is JsonObject targetObject ? (JsonObject)targetObject.DeepClone() : [];
        foreach (var (key, value) in patchObject)
        {
            if (value is null)
            {
                result.Remove(key);
            }
            else
            {
                result[key] = MergePatch(result[key], value);
            }
        }

        return result;
    }

    private static JsonElement CasesOf(string path) => JsonDocument.Parse(File.ReadAllText(path)).RootElement.GetProperty("cases").Clone();

    private static int[] Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32()).ToArray();

    private static string[] Strings(JsonElement array) => array.EnumerateArray().Select(e => e.GetString()!).ToArray();
}
