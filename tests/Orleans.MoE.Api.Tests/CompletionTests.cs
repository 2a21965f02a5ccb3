using System.Text;
using System.Text.Json;
using Orleans.MoE.Grains.Generation;

namespace Orleans.MoE.Api.Tests;

/// <summary>The OpenAI-compatible endpoints give the single-process engine's outputs, whole or streamed.</summary>
[Collection(EmbeddedServerGroup.NAME)]
public sealed class CompletionTests(EmbeddedServerFixture fixture)
{
    private const string Prompt = "def fibonacci(n):";

    private FrontEndServer Server => fixture.Server;

    [Fact]
    public async Task Models_lists_the_served_model_and_names_an_unknown_one()
    {
        var list = JsonDocument.Parse(await Server.Http.GetStringAsync("/v1/models")).RootElement;
        Assert.Equal("list", list.GetProperty("object").GetString());
        Assert.Equal([FrontEndServer.Model], list.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()));
        var one = JsonDocument.Parse(await Server.Http.GetStringAsync($"/v1/models/{FrontEndServer.Model}")).RootElement;
        Assert.Equal("model", one.GetProperty("object").GetString());

        using var unknown = await Server.Http.GetAsync("/v1/models/no-such-model");
        Assert.Equal(404, (int)unknown.StatusCode);
        var error = JsonDocument.Parse(await unknown.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
        Assert.Contains(FrontEndServer.Model, error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_completion_is_the_single_process_engines_greedy_text()
    {
        var answer = await Server.PostJsonAsync("/v1/completions", $$"""{"model":"{{FrontEndServer.Model}}","prompt":"{{Prompt}}","max_tokens":24,"temperature":0}""");

        Assert.Equal("text_completion", answer.GetProperty("object").GetString());
        var choice = answer.GetProperty("choices")[0];
        Assert.Equal(await Reference.CompletionAsync(Prompt, 24), choice.GetProperty("text").GetString());
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        var usage = answer.GetProperty("usage");
        Assert.Equal(Reference.Encode(Prompt).Count, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(24, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(Reference.Encode(Prompt).Count + 24, usage.GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task A_chat_completion_uses_the_plain_format_of_a_model_without_template()
    {
        var answer = await Server.PostJsonAsync("/v1/chat/completions", $$"""{"model":"{{FrontEndServer.Model}}","messages":[{"role":"user","content":"{{Prompt}}"}],"max_tokens":20,"temperature":0}""");

        Assert.Equal("chat.completion", answer.GetProperty("object").GetString());
        var message = answer.GetProperty("choices")[0].GetProperty("message");
        Assert.Equal("assistant", message.GetProperty("role").GetString());
        Assert.Equal(await Reference.ChatAsync(Prompt, 20), message.GetProperty("content").GetString());
    }

    [Fact]
    public async Task A_streamed_chat_completion_arrives_in_pieces_that_make_the_whole_answer()
    {
        var body = $$"""{"model":"{{FrontEndServer.Model}}","messages":[{"role":"user","content":"{{Prompt}}"}],"max_tokens":20,"temperature":0,"stream":true,"stream_options":{"include_usage":true} }""";

        var (events, done) = await Server.StreamAsync("/v1/chat/completions", body);

        Assert.True(done, "the stream ends with [DONE]");
        var chunks = events.Where(e => e.GetProperty("choices").GetArrayLength() > 0).ToList();
        Assert.All(events, e => Assert.Equal("chat.completion.chunk", e.GetProperty("object").GetString()));
        Assert.Equal("assistant", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        var text = string.Concat(chunks.Select(c => c.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("content", out var t) ? t.GetString() : ""));
        Assert.Equal(await Reference.ChatAsync(Prompt, 20), text);
        Assert.True(chunks.Count(c => c.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("content", out var t) && t.GetString()!.Length > 0) > 5, "several pieces of text");
        Assert.Equal("length", chunks[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        var usage = events[^1].GetProperty("usage");
        Assert.Equal(20, usage.GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task A_streamed_completion_matches_the_whole_one()
    {
        var (events, done) = await Server.StreamAsync("/v1/completions", $$"""{"model":"{{FrontEndServer.Model}}","prompt":"{{Prompt}}","max_tokens":16,"temperature":0,"stream":true}""");

        Assert.True(done);
        Assert.Equal(await Reference.CompletionAsync(Prompt, 16), string.Concat(events.Select(e => e.GetProperty("choices")[0].GetProperty("text").GetString())));
        Assert.All(events, e => Assert.False(e.TryGetProperty("usage", out _), "no usage without stream_options"));
    }

    [Fact]
    public async Task A_stop_string_ends_the_text_just_before_it_whole_or_streamed()
    {
        var full = await Reference.CompletionAsync(Prompt, 30);
        var stop = full.Substring(full.Length / 2, 4);
        var expected = full[..full.IndexOf(stop, StringComparison.Ordinal)];
        var body = $$"""{"model":"{{FrontEndServer.Model}}","prompt":"{{Prompt}}","max_tokens":30,"temperature":0,"stop":["never-there", {{JsonSerializer.Serialize(stop)}}]}""";

        var answer = await Server.PostJsonAsync("/v1/completions", body);
        var (events, done) = await Server.StreamAsync("/v1/completions", body.Replace("\"temperature\":0", "\"temperature\":0,\"stream\":true", StringComparison.Ordinal));

        var choice = answer.GetProperty("choices")[0];
        Assert.Equal(expected, choice.GetProperty("text").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.True(answer.GetProperty("usage").GetProperty("completion_tokens").GetInt32() < 30);
        Assert.True(done);
        Assert.Equal(expected, string.Concat(events.Select(e => e.GetProperty("choices")[0].GetProperty("text").GetString())));
        Assert.Equal("stop", events[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task Seeded_sampling_repeats_and_n_gives_one_choice_per_seed()
    {
        string Body(int n, int seed) => $$"""{"model":"{{FrontEndServer.Model}}","prompt":"{{Prompt}}","max_tokens":12,"temperature":1,"top_p":0.9,"seed":{{seed}},"n":{{n}}}""";

        var three = await Server.PostJsonAsync("/v1/completions", Body(3, 7));
        var again = await Server.PostJsonAsync("/v1/completions", Body(3, 7));
        var second = await Server.PostJsonAsync("/v1/completions", Body(1, 8));

        var texts = three.GetProperty("choices").EnumerateArray().OrderBy(c => c.GetProperty("index").GetInt32()).Select(c => c.GetProperty("text").GetString()).ToArray();
        Assert.Equal(3, texts.Length);
        Assert.Equal(texts, again.GetProperty("choices").EnumerateArray().OrderBy(c => c.GetProperty("index").GetInt32()).Select(c => c.GetProperty("text").GetString()));
        Assert.Equal(texts[1], second.GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal(36, three.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task A_prompt_of_token_ids_reads_as_its_text()
    {
        var ids = JsonSerializer.Serialize(Reference.Encode(Prompt));

        var answer = await Server.PostJsonAsync("/v1/completions", $$"""{"model":"{{FrontEndServer.Model}}","prompt":{{ids}},"max_tokens":10,"temperature":0}""");

        Assert.Equal(await Reference.CompletionAsync(Prompt, 10), answer.GetProperty("choices")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task The_request_id_is_echoed_and_follows_the_request_into_the_mesh()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
        {
            Content = new StringContent($$"""{"model":"{{FrontEndServer.Model}}","prompt":"x = 1","max_tokens":3}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("X-Request-Id", "trace-me-42");

        using var response = await Server.Http.SendAsync(request);

        Assert.Equal("trace-me-42", response.Headers.GetValues("X-Request-Id").Single());
        Assert.True(await Eventually.TrueAsync(() => Server.Logs.Lines.Any(l => l.Contains(nameof(GenerationScheduler), StringComparison.Ordinal) && l.Contains("Request trace-me-42: sequence", StringComparison.Ordinal))),
            "the silo's scheduler logs the request id");
        Assert.Contains(Server.Logs.Lines, l => l.Contains("RequestId:trace-me-42", StringComparison.Ordinal) && l.Contains("answered 200", StringComparison.Ordinal));
    }
}
