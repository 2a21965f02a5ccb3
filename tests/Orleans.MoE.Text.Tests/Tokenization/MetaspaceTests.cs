using Orleans.MoE.Text.Tokenization;

namespace Orleans.MoE.Text.Tests.Tokenization;

/// <summary>The Metaspace pre-tokenizer and decoder (newer SentencePiece-style files); expectations from the reference library.</summary>
public sealed class MetaspaceTests
{
    private static Tokenizer Build(string prependScheme) => Tokenizer.FromJson($$"""
        {
          "added_tokens": [{"id": 0, "content": "<s>", "special": true, "normalized": false}],
          "normalizer": null,
          "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "{{prependScheme}}", "split": false},
          "post_processor": null,
          "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "{{prependScheme}}", "split": false},
          "model": {"type": "BPE", "vocab": {"<s>": 0, "▁": 1, "a": 2, "b": 3, "▁a": 4, "▁b": 5},
                    "merges": [["▁", "a"], ["▁", "b"]], "byte_fallback": false, "fuse_unk": false}
        }
        """, "metaspace.json");

    [Theory]
    [InlineData("first", new[] { "▁a", "<s>", "b", "▁b" }, "ab b", "a   b")]
    [InlineData("always", new[] { "▁a", "<s>", "▁b", "▁b" }, "a b b", "a   b")]
    [InlineData("never", new[] { "a", "<s>", "b", "▁b" }, "ab b", " a   b")]
    public void Prepends_and_decodes_by_scheme(string scheme, string[] tokens, string decoded, string decodedSpaces)
    {
        var tokenizer = Build(scheme);
        Assert.Equal(tokens, tokenizer.EncodeToTokens("a<s>b b"));
        Assert.Equal(decoded, tokenizer.Decode(tokenizer.Encode("a<s>b b")));
        Assert.Equal(decodedSpaces, tokenizer.Decode([4, 1, 1, 5]));
    }

    [Fact]
    public void Add_prefix_space_false_with_a_prepend_scheme_is_refused_as_the_reference_does()
    {
        var error = Assert.Throws<TokenizerFormatException>(() => Tokenizer.FromJson("""
            {"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
             "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "add_prefix_space": false}}
            """, "legacy.json"));
        Assert.Contains("legacy.json", error.Message);
        Assert.Contains("add_prefix_space", error.Message);
    }
}
