using System.Text.Json.Nodes;
using Orleans.MoE.Text.Tokenization;

namespace Orleans.MoE.Text.Tests.Tokenization;

public sealed class TokenizerErrorTests
{
    private static string DemoJson => File.ReadAllText(Path.Combine(RepositoryPaths.DemoModel, "tokenizer.json"));

    private static TokenizerFormatException Refused(Action<JsonNode> change)
    {
        var json = JsonNode.Parse(DemoJson)!;
        change(json);
        return Assert.Throws<TokenizerFormatException>(() => Tokenizer.FromJson(json.ToJsonString(), "demo/tokenizer.json"));
    }

    [Theory]
    [InlineData("pre_tokenizer", "Punctuation")]
    [InlineData("pre_tokenizer", "BertPreTokenizer")]
    [InlineData("decoder", "WordPiece")]
    [InlineData("decoder", "CTC")]
    [InlineData("normalizer", "BertNormalizer")]
    [InlineData("normalizer", "Precompiled")]
    [InlineData("post_processor", "RobertaProcessing")]
    [InlineData("post_processor", "BertProcessing")]
    [InlineData("model", "Unigram")]
    [InlineData("model", "WordPiece")]
    public void An_unsupported_component_is_refused_by_name(string component, string type)
    {
        var error = Refused(json =>
        {
            if (json[component] is JsonObject existing)
            {
                existing["type"] = type;
            }
            else
            {
                json[component] = new JsonObject { ["type"] = type };
            }
        });
        Assert.Equal($"demo/tokenizer.json: {component} type '{type}' is not supported", error.Message);
    }

    [Fact]
    public void An_unsupported_component_inside_a_sequence_is_refused_by_name()
    {
        var error = Refused(json => json["pre_tokenizer"] = JsonNode.Parse("""{"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}]}"""));
        Assert.Equal("demo/tokenizer.json: pre_tokenizer type 'Digits' is not supported", error.Message);
    }

    [Fact]
    public void A_regex_with_a_script_property_is_refused_rather_than_mistranslated()
    {
        var error = Refused(json => json["pre_tokenizer"] = JsonNode.Parse("""{"type": "Split", "pattern": {"Regex": "\\p{Han}+"}, "behavior": "Isolated", "invert": false}"""));
        Assert.Contains("demo/tokenizer.json: pre_tokenizer Split regex", error.Message);
        Assert.Contains("Han", error.Message);
    }

    [Fact]
    public void A_merge_outside_the_vocabulary_is_refused()
    {
        var error = Refused(json => json["model"]!["merges"]!.AsArray().Add(new JsonArray("Ġ", "nonexistent")));
        Assert.Contains("'nonexistent' is not in the vocabulary", error.Message);
    }

    [Fact]
    public void Bpe_dropout_is_refused()
    {
        var error = Refused(json => json["model"]!["dropout"] = 0.1);
        Assert.Contains("dropout", error.Message);
    }

    [Fact]
    public void Malformed_json_names_the_file()
    {
        var error = Assert.Throws<TokenizerFormatException>(() => Tokenizer.FromJson(DemoJson[..1000], "cut/tokenizer.json"));
        Assert.StartsWith("cut/tokenizer.json: not valid JSON", error.Message);
    }

    [Fact]
    public void A_malformed_file_on_disk_names_the_file()
    {
        var path = Path.Combine(Path.GetTempPath(), $"tokenizer-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, "{\"model\": ");
        try
        {
            var error = Assert.Throws<TokenizerFormatException>(() => Tokenizer.Load(path));
            Assert.Contains(path, error.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_json_file_that_is_not_a_tokenizer_is_refused()
    {
        var error = Assert.Throws<TokenizerFormatException>(() => Tokenizer.FromJson("{\"hidden_size\": 4}", "config.json"));
        Assert.Contains("no 'model' section", error.Message);
    }

    [Fact]
    public void A_component_with_a_wrongly_typed_field_is_refused()
    {
        var error = Refused(json => json["model"]!["vocab"] = new JsonArray(1, 2));
        Assert.Contains("'vocab' must be an object", error.Message);
    }

    [Fact]
    public void A_missing_file_is_a_clear_error()
    {
        var error = Assert.Throws<FileNotFoundException>(() => Tokenizer.Load("/nonexistent/tokenizer.json"));
        Assert.Contains("/nonexistent/tokenizer.json", error.Message);
    }

    [Fact]
    public void Ids_outside_the_vocabulary_are_skipped_when_decoding_as_the_reference_does()
    {
        var tokenizer = Tokenizer.FromJson(DemoJson, "demo");
        Assert.Equal(tokenizer.Decode([43]), tokenizer.Decode([43, 999_999, -1]));
    }

    [Fact]
    public void Special_tokens_in_text_become_their_ids()
    {
        var tokenizer = Tokenizer.FromJson(DemoJson, "demo");
        var ids = tokenizer.Encode("a</s>b", addSpecialTokens: false);
        Assert.Contains(2, ids);
        Assert.True(tokenizer.IsSpecial(2));
        Assert.False(tokenizer.IsSpecial(43));
        Assert.Equal("ab", tokenizer.Decode(ids));
        Assert.Equal("a</s>b", tokenizer.Decode(ids, skipSpecialTokens: false));
        Assert.Equal(4096, tokenizer.VocabularySize);
        Assert.Equal(2, tokenizer.TokenToId("</s>"));
        Assert.Equal("</s>", tokenizer.IdToToken(2));
    }
}
