using Orleans.MoE.Models.Tokenization;

namespace Orleans.MoE.Models.Tests.Tokenization;

public sealed class AddedTokenTests
{
    private static Tokenizer Build(bool normalized) => Tokenizer.FromJson($$"""
        {
          "added_tokens": [{"id": 9, "content": "cat", "special": false, "normalized": {{(normalized ? "true" : "false")}}}],
          "normalizer": {"type": "Lowercase"},
          "pre_tokenizer": null,
          "post_processor": null,
          "decoder": {"type": "Fuse"},
          "model": {"type": "BPE", "vocab": {"c": 0, "a": 1, "t": 2, "C": 3, "A": 4, "T": 5, " ": 6}, "merges": []}
        }
        """, "added.json");

    [Fact]
    public void A_normalized_added_token_is_found_after_normalization()
    {
        Assert.Equal([9, 6, 9], Build(normalized: true).Encode("CAT cat"));
    }

    [Fact]
    public void An_unnormalized_added_token_is_found_only_in_the_raw_text()
    {
        Assert.Equal([0, 1, 2, 6, 9], Build(normalized: false).Encode("CAT cat"));
    }
}
