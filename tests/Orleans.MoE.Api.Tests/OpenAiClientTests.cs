using System.Text.Json;

namespace Orleans.MoE.Api.Tests;

/// <summary>The official <c>openai</c> npm client against the front end: streaming and not, both endpoints, errors, keys.</summary>
public sealed class OpenAiClientTests
{
    private const string Key = "sk-openai-client-test";

    [Fact]
    public async Task The_official_client_gets_the_engines_text_and_OpenAIs_errors()
    {
        await using var server = await FrontEndServer.StartEmbeddedAsync(api => api.ApiKeys.Add(Key));
        var expected = (Completion: await Reference.CompletionAsync("def fibonacci(n):", 16), Chat: await Reference.ChatAsync("def fibonacci(n):", 16));

        var result = await NodeScripts.RunAsync("openai-check.mjs", server.BaseUrl, FrontEndServer.Model, Key);

        Assert.Equal([FrontEndServer.Model], Ok(result, "models").EnumerateArray().Select(m => m.GetString()));
        var completion = Ok(result, "completion");
        Assert.Equal(expected.Completion, completion.GetProperty("text").GetString());
        Assert.Equal(16, completion.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        var completionStream = Ok(result, "completionStream");
        Assert.Equal(expected.Completion, completionStream.GetProperty("text").GetString());
        Assert.True(completionStream.GetProperty("pieces").GetInt32() > 1, "the completion streamed in pieces");
        var chat = Ok(result, "chat");
        Assert.Equal(expected.Chat, chat.GetProperty("text").GetString());
        Assert.Equal("assistant", chat.GetProperty("role").GetString());
        var chatStream = Ok(result, "chatStream");
        Assert.Equal(expected.Chat, chatStream.GetProperty("text").GetString());
        Assert.Equal("length", chatStream.GetProperty("finish").GetString());
        Assert.Equal(16, chatStream.GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        AssertError(result, "unknownModel", "NotFoundError", 404, "model_not_found");
        AssertError(result, "badTemperature", "BadRequestError", 400, null, "temperature");
        AssertError(result, "pastContext", "BadRequestError", 400, "context_length_exceeded", "max_tokens");
        AssertError(result, "wrongKey", "AuthenticationError", 401, "invalid_api_key");
        Assert.Equal(3, Ok(result, "abandoned").GetInt32());
        Assert.Equal(4, Ok(result, "afterAbandoned").GetInt32());
    }

    private static JsonElement Ok(JsonElement result, string call) =>
        result.GetProperty(call).TryGetProperty("ok", out var ok) ? ok : throw new Xunit.Sdk.XunitException($"{call} failed: {result.GetProperty(call)}");

    private static void AssertError(JsonElement result, string call, string name, int status, string? code, string? param = null)
    {
        var error = result.GetProperty(call).TryGetProperty("error", out var e) ? e : throw new Xunit.Sdk.XunitException($"{call} should have failed: {result.GetProperty(call)}");
        Assert.Equal(name, error.GetProperty("name").GetString());
        Assert.Equal(status, error.GetProperty("status").GetInt32());
        if (code is not null)
        {
            Assert.Equal(code, error.GetProperty("code").GetString());
        }

        if (param is not null)
        {
            Assert.Equal(param, error.GetProperty("param").GetString());
        }
    }
}
