using Orleans.MoE.Models.Tokenization;

namespace Orleans.MoE.Models.Tests.Tokenization;

/// <summary>The Metaspace pre-tokenizer and decoder (newer SentencePiece-style tokenizer.json files).</summary>
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

    [Fact]
    public void First_prepends_only_at_the_start_of_the_input()
    {
        var tokenizer = Build("first");
        Assert.Equal(["▁a", "<s>", "b", "▁b"], tokenizer.EncodeToTokens("a<s>b b"));
        Assert.Equal("ab b", tokenizer.Decode(tokenizer.Encode("a<s>b b")));
    }

    [Fact]
    public void Always_prepends_to_every_segment()
    {
        var tokenizer = Build("always");
        Assert.Equal(["▁a", "<s>", "▁b", "▁b"], tokenizer.EncodeToTokens("a<s>b b"));
    }

    [Fact]
    public void Never_prepends_nothing()
    {
        var tokenizer = Build("never");
        Assert.Equal(["a", "<s>", "b", "▁b"], tokenizer.EncodeToTokens("a<s>b b"));
        Assert.Equal("ab b", tokenizer.Decode(tokenizer.Encode("a<s>b b")));
    }
}
