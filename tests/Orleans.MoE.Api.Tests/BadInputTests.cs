using System.Text;
using System.Text.Json;

namespace Orleans.MoE.Api.Tests;

/// <summary>Bad requests get OpenAI's error shape with the right status and a message naming the problem, and disturb nothing else.</summary>
[Collection(EmbeddedServerGroup.NAME)]
public sealed class BadInputTests(EmbeddedServerFixture fixture)
{
    private const string M = FrontEndServer.Model;

    private FrontEndServer Server => fixture.Server;

    public static TheoryData<string, string, string?, string> Invalid => new()
    {
        // endpoint, body, the param named, a fragment of the message
        { "/v1/completions", """{"model":"m", "prompt": """, null, "not valid JSON" },
        { "/v1/completions", """[1, 2]""", null, "must be a JSON object" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"x","max_tokens":"ten"}""", "max_tokens", "must be an integer" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"x","max_tokens":2.5}""", "max_tokens", "must be an integer" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"x","stream":"yes"}""", "stream", "must be a boolean" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":42}""", "prompt", "must be a string" },
        { "/v1/completions", """{"prompt":"x"}""", "model", "'model' is required" },
        { "/v1/completions", $$"""{"model":"{{M}}"}""", "prompt", "'prompt' is required" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"x","foo":1}""", "foo", "Unrecognized request argument supplied: foo" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":""}""", "prompt", "must not be empty" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":[]}""", "prompt", "must not be an empty list" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":[1, -5]}""", "prompt", "non-negative integers" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":[1, 99999999]}""", "prompt", "outside the model's vocabulary" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"x","temperature":3}""", "temperature", "at most 2" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"x","temperature":-0.5}""", "temperature", "at least 0" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"x","top_p":0}""", "top_p", "greater than 0" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"x","top_p":1.5}""", "top_p", "at most 1" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"x","n":0}""", "n", "between 1 and 8" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"x","n":100}""", "n", "between 1 and 8" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"x","stop":["a","b","c","d","e"]}""", "stop", "at most 4" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"x","stop":[""]}""", "stop", "must not be empty" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"x","stream_options":{"include_usage":true} }""", "stream_options", "only allowed with 'stream': true" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"x","max_tokens":1023}""", "max_tokens", "maximum context length is 1024 tokens" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"x","max_tokens":5000}""", "max_tokens", "at most 4096" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"x","max_tokens":-1}""", "max_tokens", "'max_tokens' must be at least 1, not -1" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"x","echo":true}""", "echo", "not supported" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"x","frequency_penalty":0.5}""", "frequency_penalty", "not supported" },
        { "/v1/chat/completions", $$"""{"model":"{{M}}","messages":"hello"}""", "messages", "must be a list of messages" },
        { "/v1/chat/completions", $$"""{"model":"{{M}}","messages":[]}""", "messages", "must not be empty" },
        { "/v1/chat/completions", $$"""{"model":"{{M}}","messages":[{"role":"user","content":7}]}""", "messages[0].content", "must be a string" },
        { "/v1/chat/completions", $$"""{"model":"{{M}}","messages":[{"role":"wizard","content":"hi"}]}""", "messages[0].role", "must be one of" },
        { "/v1/chat/completions", $$"""{"model":"{{M}}","messages":[{"role":"user","content":"hi","tool_call_id":"x"}]}""", "messages[0].tool_call_id", "not supported" },
        { "/v1/chat/completions", $$"""{"model":"{{M}}","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"} }]}]}""", "messages[0].content", "text only" },
        { "/v1/chat/completions", $$"""{"model":"{{M}}","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function"}]}""", "tools", "not supported" },
        { "/v1/chat/completions", $$"""{"model":"{{M}}","messages":[{"role":"user","content":"hi"}],"logprobs":true}""", "logprobs", "not supported" },
        { "/v1/chat/completions", $$"""{"model":"{{M}}","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"max_completion_tokens":5}""", "max_completion_tokens", "not both" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public async Task An_invalid_request_gets_400_naming_the_problem(string path, string body, string? param, string message)
    {
        var answer = await Server.PostJsonAsync(path, body, status: 400);

        var error = answer.GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Contains(message, error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(param, error.GetProperty("param").ValueKind == JsonValueKind.Null ? null : error.GetProperty("param").GetString());
        await AssertStillServesAsync();
    }

    public static TheoryData<string, string, string> NotText => new()
    {
        // endpoint, body with <BAD> where the broken text goes, the param named
        { "/v1/completions", $$"""{"model":"<BAD>","prompt":"x"}""", "model" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"<BAD>"}""", "prompt" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"<BAD>","stream":true}""", "prompt" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":["ok","<BAD>"]}""", "prompt[1]" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"x","stop":["<BAD>"]}""", "stop[0]" },
        { "/v1/completions", $$"""{"model":"{{M}}","prompt":"x","user":"<BAD>"}""", "user" },
        { "/v1/chat/completions", $$"""{"model":"{{M}}","messages":[{"role":"<BAD>","content":"hi"}]}""", "messages[0].role" },
        { "/v1/chat/completions", $$"""{"model":"{{M}}","messages":[{"role":"user","content":"<BAD>"}]}""", "messages[0].content" },
        { "/v1/chat/completions", $$"""{"model":"{{M}}","messages":[{"role":"user","content":"<BAD>"}],"stream":true}""", "messages[0].content" },
        { "/v1/chat/completions", $$"""{"model":"{{M}}","messages":[{"role":"user","name":"<BAD>","content":"hi"}]}""", "messages[0].name" },
        { "/v1/chat/completions", $$"""{"model":"{{M}}","messages":[{"role":"user","content":[{"type":"text","text":"<BAD>"}]}]}""", "messages[0].content[0].text" },
    };

    [Theory]
    [MemberData(nameof(NotText))]
    public async Task A_string_that_is_not_text_gets_400_naming_the_field(string path, string template, string param)
    {
        // A raw 0xFF byte (never UTF-8), and a lone high surrogate escape.
        var parts = template.Split("<BAD>");
        byte[][] bodies =
        [
            [.. Encoding.UTF8.GetBytes(parts[0]), 0xFF, .. Encoding.UTF8.GetBytes(parts[1])],
            Encoding.UTF8.GetBytes(parts[0] + "a\\ud800b" + parts[1]),
        ];
        foreach (var body in bodies)
        {
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            using var response = await Server.Http.PostAsync(path, content);
            var text = await response.Content.ReadAsStringAsync();

            Assert.True((int)response.StatusCode == 400, $"{(int)response.StatusCode}: {text}");
            var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
            Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
            Assert.Contains("not valid text", error.GetProperty("message").GetString(), StringComparison.Ordinal);
            Assert.Equal(param, error.GetProperty("param").GetString());
        }

        await AssertStillServesAsync();
    }

    [Fact]
    public async Task An_unknown_model_is_404_naming_the_served_ones()
    {
        var error = (await Server.PostJsonAsync("/v1/chat/completions", """{"model":"gpt-7","messages":[{"role":"user","content":"hi"}]}""", status: 404)).GetProperty("error");

        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
        Assert.Contains("'gpt-7' does not exist", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Contains(M, error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_prompt_longer_than_the_context_is_refused_whole_and_streamed()
    {
        var words = string.Join(' ', Enumerable.Range(0, 3000).Select(i => $"word{i}"));
        var body = $$"""{"model":"{{M}}","prompt":"{{words}}","max_tokens":4}""";

        var error = (await Server.PostJsonAsync("/v1/completions", body, status: 400)).GetProperty("error");
        var streamed = (await Server.PostJsonAsync("/v1/completions", body.Replace("\"max_tokens\":4", "\"max_tokens\":4,\"stream\":true", StringComparison.Ordinal), status: 400)).GetProperty("error");

        Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());
        Assert.Contains("maximum context length is 1024 tokens", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("context_length_exceeded", streamed.GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_body_that_is_not_json_is_415_and_an_unknown_url_404()
    {
        using var form = await Server.Http.PostAsync("/v1/completions", new StringContent("model=x", Encoding.UTF8, "application/x-www-form-urlencoded"));
        using var unknown = await Server.Http.GetAsync("/v1/engines");

        Assert.Equal(415, (int)form.StatusCode);
        Assert.Contains("application/json", await form.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(404, (int)unknown.StatusCode);
        Assert.Equal("unknown_url", JsonDocument.Parse(await unknown.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    private async Task AssertStillServesAsync()
    {
        var ok = await Server.PostJsonAsync("/v1/completions", $$"""{"model":"{{M}}","prompt":"x = 1","max_tokens":2}""");
        Assert.Equal(2, ok.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }
}
