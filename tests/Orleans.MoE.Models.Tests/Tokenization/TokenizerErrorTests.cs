using System.Text.Json.Nodes;
using Orleans.MoE.Models.Tokenization;

namespace Orleans.MoE.Models.Tests.Tokenization;

public sealed class TokenizerErrorTests
{
    private static string DemoJson => File.ReadAllText(Path.Combine(RepositoryPaths.DemoModel, "tokenizer.json"));

    [Theory]
    [InlineData("pre_tokenizer", "Punctuation")]
    [InlineData("decoder", "WordPiece")]
    [InlineData("normalizer", "BertNormalizer")]
    [InlineData("post_processor", "RobertaProcessing")]
    [InlineData("model", "Unigram")]
    public void An_unsupported_component_is_refused_by_name(string component, string type)
    {
        var json = JsonNode.Parse(DemoJson)!;
        if (json[component] is JsonObject existing)
        {
            existing["type"] = type;
        }
        else
        {
            json[component] = new JsonObject { ["type"] = type };
        }

        var error = Assert.Throws<TokenizerFormatException>(() => Tokenizer.FromJson(json.ToJsonString(), "demo/tokenizer.json"));
        Assert.Equal($"demo/tokenizer.json: {component} type '{type}' is not supported", error.Message);
    }

    [Fact]
    public void Malformed_json_names_the_file()
    {
        var error = Assert.Throws<TokenizerFormatException>(() => Tokenizer.FromJson(DemoJson[..1000], "cut/tokenizer.json"));
        Assert.Contains("cut/tokenizer.json", error.Message);
        Assert.Contains("not valid JSON", error.Message);
    }

    [Fact]
    public void A_json_file_that_is_not_a_tokenizer_is_refused()
    {
        var error = Assert.Throws<TokenizerFormatException>(() => Tokenizer.FromJson("{\"hidden_size\": 4}", "config.json"));
        Assert.Contains("no 'model' section", error.Message);
    }

    [Fact]
    public void A_missing_file_is_a_clear_error()
    {
        var error = Assert.Throws<FileNotFoundException>(() => Tokenizer.Load("/nonexistent/tokenizer.json"));
        Assert.Contains("/nonexistent/tokenizer.json", error.Message);
    }

    [Fact]
    public void Decoding_an_id_outside_the_vocabulary_is_refused()
    {
        var tokenizer = Tokenizer.FromJson(DemoJson, "demo");
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([5, 999_999]));
    }

    [Fact]
    public void Special_tokens_in_text_become_their_ids()
    {
        var tokenizer = Tokenizer.FromJson(DemoJson, "demo");
        var ids = tokenizer.Encode("a</s>b", addSpecialTokens: false);
        Assert.Contains(2, ids);
        Assert.True(tokenizer.IsSpecial(2));
        Assert.Equal("ab", tokenizer.Decode(ids));
        Assert.Equal("a</s>b", tokenizer.Decode(ids, skipSpecialTokens: false));
    }
}
