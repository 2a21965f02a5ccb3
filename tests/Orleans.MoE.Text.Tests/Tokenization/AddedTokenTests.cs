using Orleans.MoE.Text.Tokenization;

namespace Orleans.MoE.Text.Tests.Tokenization;

/// <summary>Added tokens matched in the raw or the normalized text, and their ids (expectations from the reference library).</summary>
public sealed class AddedTokenTests
{
    private static Tokenizer Build(bool normalized, int id = 7) => Tokenizer.FromJson($$"""
        {
          "added_tokens": [{"id": {{id}}, "content": "cat", "special": false, "normalized": {{(normalized ? "true" : "false")}}}],
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
        Assert.Equal([7, 6, 7], Build(normalized: true).Encode("CAT cat"));
    }

    [Fact]
    public void An_unnormalized_added_token_is_found_only_in_the_raw_text()
    {
        Assert.Equal([0, 1, 2, 6, 7], Build(normalized: false).Encode("CAT cat"));
    }

    [Fact]
    public void A_new_added_token_gets_the_next_id_after_the_model_vocabulary_whatever_the_file_says()
    {
        var tokenizer = Build(normalized: false, id: 9);
        Assert.Equal(7, tokenizer.TokenToId("cat"));
        Assert.Equal("cat", tokenizer.IdToToken(7));
        Assert.Null(tokenizer.IdToToken(9));
        Assert.Equal(8, tokenizer.VocabularySize);
    }
}
