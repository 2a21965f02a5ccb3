using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Orleans.MoE.Grains.Generation;

namespace Orleans.MoE.Api.Tests;

/// <summary>API keys, per-key concurrency, timeouts, and clients that go away, stall or read slowly.</summary>
public sealed class ProtectionTests
{
    private const string M = FrontEndServer.Model;
    private const string Key = "sk-test-key-0123456789";
    private const string OtherKey = "sk-other-key-9876543210";

    private static string Completion(int maxTokens, bool stream = false) =>
        $$"""{"model":"{{M}}","prompt":"def fibonacci(n):","max_tokens":{{maxTokens}},"temperature":0,"stream":{{(stream ? "true" : "false")}}}""";

    [Fact]
    public async Task Orleans_dashboard_is_served_beside_the_mesh_behind_the_api_key()
    {
        await using var server = await FrontEndServer.StartEmbeddedAsync(api => api.ApiKeys.Add(Key));

        using var anonymous = await server.Http.GetAsync("/orleans/");
        using var wrongCookie = new HttpRequestMessage(HttpMethod.Get, "/orleans/");
        wrongCookie.Headers.Add("Cookie", "moe-api-key=not-the-key");
        using var refused = await server.Http.SendAsync(wrongCookie);
        using var withCookie = new HttpRequestMessage(HttpMethod.Get, "/orleans/");
        withCookie.Headers.Add("Cookie", $"moe-api-key={Uri.EscapeDataString(Key)}");
        using var page = await server.Http.SendAsync(withCookie);
        using var withHeader = new HttpRequestMessage(HttpMethod.Get, "/orleans/");
        withHeader.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Key);
        using var byHeader = await server.Http.SendAsync(withHeader);

        Assert.Equal(401, (int)anonymous.StatusCode);
        Assert.Equal(401, (int)refused.StatusCode);
        Assert.Equal(200, (int)page.StatusCode);
        Assert.Contains("Orleans", await page.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
        Assert.Equal(200, (int)byHeader.StatusCode);
        // The API's own cookie never replaces the header on the OpenAI endpoints.
        using var cookieOnApi = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        cookieOnApi.Headers.Add("Cookie", $"moe-api-key={Uri.EscapeDataString(Key)}");
        Assert.Equal(401, (int)(await server.Http.SendAsync(cookieOnApi)).StatusCode);
    }

    [Fact]
    public async Task Api_keys_are_required_when_configured_and_never_logged()
    {
        await using var server = await FrontEndServer.StartEmbeddedAsync(api => api.ApiKeys.AddRange([Key, OtherKey]));

        var missing = (await server.PostJsonAsync("/v1/completions", Completion(2), status: 401)).GetProperty("error");
        var wrong = (await server.PostJsonAsync("/v1/completions", Completion(2), status: 401, apiKey: Key + "x")).GetProperty("error");
        var ok = await server.PostJsonAsync("/v1/completions", Completion(2), apiKey: OtherKey);
        using var mesh = await server.Http.GetAsync("/api/mesh");
        using var health = await server.Http.GetAsync("/healthz");
        using var metrics = await server.Http.GetAsync("/metrics");

        Assert.Equal("invalid_api_key", missing.GetProperty("code").GetString());
        Assert.Contains("didn't provide an API key", missing.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("invalid_api_key", wrong.GetProperty("code").GetString());
        Assert.Equal(2, ok.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(401, (int)mesh.StatusCode);
        Assert.Equal(200, (int)health.StatusCode);
        Assert.Equal(200, (int)metrics.StatusCode); // Prometheus scrapes without a key, as /healthz is called
        Assert.Contains(server.Logs.Lines, l => l.Contains("for key-2", StringComparison.Ordinal));
        Assert.DoesNotContain(server.Logs.Lines, l => l.Contains("sk-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_key_over_its_concurrency_limit_gets_429_with_retry_after_and_others_go_on()
    {
        await using var server = await FrontEndServer.StartEmbeddedAsync(api =>
        {
            api.ApiKeys.AddRange([Key, OtherKey]);
            api.MaxConcurrentRequestsPerKey = 1;
        });
        using var running = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(Completion(900, stream: true), Encoding.UTF8, "application/json") };
        running.Headers.Authorization = new("Bearer", Key);
        using var first = await server.Http.SendAsync(running, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(200, (int)first.StatusCode);

        using var refused = await server.PostAsync("/v1/completions", Completion(2), Key);
        var other = await server.PostJsonAsync("/v1/completions", Completion(2), apiKey: OtherKey);

        Assert.Equal(429, (int)refused.StatusCode);
        Assert.Equal("1", refused.Headers.GetValues("Retry-After").Single());
        Assert.Equal("rate_limit_exceeded", JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(2, other.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task A_key_runs_its_limit_finishes_and_runs_its_limit_again()
    {
        await using var server = await FrontEndServer.StartEmbeddedAsync(api =>
        {
            api.ApiKeys.Add(Key);
            api.MaxConcurrentRequestsPerKey = 2;
        });

        // Every way a request ends gives its slot back: answered, refused as invalid, streamed to the end, abandoned mid-stream.
        for (var round = 0; round < 3; round++)
        {
            // Two at once (the limit); after an abandoned stream, once the server has noticed (it polls for that).
            Assert.True(await Eventually.TrueAsync(async () =>
            {
                var both = await Task.WhenAll(server.PostAsync("/v1/completions", Completion(3), Key), server.PostAsync("/v1/completions", Completion(3), Key));
                var ok = both.All(r => (int)r.StatusCode == 200);
                foreach (var response in both)
                {
                    response.Dispose();
                }

                return ok;
            }, 15), $"round {round}: the key runs two requests at once again");

            await server.PostJsonAsync("/v1/completions", """{"model":"nope","prompt":"x"}""", status: 404, apiKey: Key);
            await server.PostJsonAsync("/v1/completions", $$"""{"model":"{{M}}","prompt":"x","max_tokens":"many"}""", status: 400, apiKey: Key);
            using (var stream = await server.PostAsync("/v1/completions", Completion(4, stream: true), Key))
            {
                Assert.Equal(200, (int)stream.StatusCode);
                Assert.EndsWith("data: [DONE]", (await stream.Content.ReadAsStringAsync()).TrimEnd(), StringComparison.Ordinal);
            }

            using (var abandoned = await server.PostAsync("/v1/completions", Completion(900, stream: true), Key))
            {
                Assert.Equal(200, (int)abandoned.StatusCode);
            }

            // The abandoned stream's slot comes back once the server notices the client left.
            Assert.True(await Eventually.TrueAsync(() => Scheduler(server).Queued == 0, 10), "the abandoned sequence ends");
        }
    }

    [Fact]
    public async Task A_request_past_the_timeout_gets_504_and_its_generation_stops()
    {
        await using var server = await FrontEndServer.StartEmbeddedAsync(api => api.RequestTimeout = TimeSpan.FromMilliseconds(300));

        var error = (await server.PostJsonAsync("/v1/completions", Completion(1000), status: 504)).GetProperty("error");

        Assert.Equal("timeout", error.GetProperty("code").GetString());
        Assert.True(await Eventually.TrueAsync(() => Scheduler(server).Queued == 0, 10), "the sequence is cancelled in the mesh");
    }

    [Fact]
    public async Task A_client_that_disconnects_mid_stream_cancels_its_generation_and_nothing_else()
    {
        await using var server = await FrontEndServer.StartEmbeddedAsync();
        var bystander = server.PostJsonAsync("/v1/completions", Completion(60));
        // A client of its own that closes the connection when the response is dropped (HttpClient would
        // otherwise read the rest of a small response to reuse the connection).
        using var leaving = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = new Uri(server.BaseUrl) };
        using (var response = await leaving.SendAsync(
            new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(Completion(1000, stream: true), Encoding.UTF8, "application/json") },
            HttpCompletionOption.ResponseHeadersRead))
        {
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            for (var events = 0; events < 3;)
            {
                events += (await reader.ReadLineAsync())!.StartsWith("data: ", StringComparison.Ordinal) ? 1 : 0;
            }
        }

        Assert.Equal(60, (await bystander).GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.True(await Eventually.TrueAsync(() => Scheduler(server).Queued == 0, 10), "the abandoned sequence is cancelled in the mesh");
        Assert.True(await Eventually.TrueAsync(() => server.Logs.Lines.Any(l => l.Contains("the client went away", StringComparison.Ordinal))), "the front end logs the disconnect");
        Assert.True(await Eventually.TrueAsync(() => server.Logs.Lines.Any(l => l.Contains("ended after", StringComparison.Ordinal) && l.Contains("cancel", StringComparison.OrdinalIgnoreCase))), "the silo logs the cancellation");
    }

    [Fact]
    public async Task A_slow_reader_gets_its_whole_stream_while_others_are_served()
    {
        await using var server = await FrontEndServer.StartEmbeddedAsync();
        var whole = await server.PostJsonAsync("/v1/completions", Completion(40));
        using var response = await server.PostAsync("/v1/completions", Completion(40, stream: true));
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var text = new StringBuilder();
        var served = 0;
        while (await reader.ReadLineAsync() is { } line && line != "data: [DONE]")
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                text.Append(JsonDocument.Parse(line[6..]).RootElement.GetProperty("choices")[0].GetProperty("text").GetString());
                if (served < 3)
                {
                    // Meanwhile another request runs to completion.
                    served += (await server.PostJsonAsync("/v1/completions", Completion(5))).GetProperty("usage").GetProperty("completion_tokens").GetInt32() == 5 ? 1 : 0;
                    await Task.Delay(200);
                }
            }
        }

        Assert.Equal(3, served);
        Assert.Equal(whole.GetProperty("choices")[0].GetProperty("text").GetString(), text.ToString());
    }

    [Fact]
    public async Task A_client_that_stalls_sending_its_body_is_timed_out_and_others_are_served()
    {
        await using var server = await FrontEndServer.StartEmbeddedAsync(api => api.RequestTimeout = TimeSpan.FromSeconds(1));
        var uri = new Uri(server.BaseUrl);
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(uri.Host, uri.Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST /v1/completions HTTP/1.1\r\nHost: {uri.Authority}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{{\"model\":"));

        var other = await server.PostJsonAsync("/v1/completions", Completion(3));
        var answer = new byte[4096];
        var read = await stream.ReadAsync(answer).AsTask().WaitAsync(TimeSpan.FromSeconds(15));

        Assert.Equal(3, other.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.StartsWith("HTTP/1.1 504", Encoding.ASCII.GetString(answer, 0, read), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_body_over_the_limit_is_413()
    {
        await using var server = await FrontEndServer.StartEmbeddedAsync(api => api.MaxRequestBodyBytes = 4096);
        var prompt = new string('a', 8000);

        var error = (await server.PostJsonAsync("/v1/completions", $$"""{"model":"{{M}}","prompt":"{{prompt}}"}""", status: 413)).GetProperty("error");

        Assert.Equal("request_too_large", error.GetProperty("code").GetString());
        Assert.Equal(1, (await server.PostJsonAsync("/v1/completions", Completion(1))).GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task A_prompt_over_the_configured_limit_is_refused()
    {
        await using var server = await FrontEndServer.StartEmbeddedAsync(api => api.MaxPromptTokens = 5);

        var error = (await server.PostJsonAsync("/v1/completions", Completion(1), status: 400)).GetProperty("error");
        var chat = (await server.PostJsonAsync("/v1/chat/completions", $$"""{"model":"{{M}}","messages":[{"role":"user","content":"def fibonacci(n):"}]}""", status: 400)).GetProperty("error");

        Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());
        Assert.Contains("accepts at most 5", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("prompt", error.GetProperty("param").GetString());
        Assert.Equal("messages", chat.GetProperty("param").GetString());
        Assert.Equal(1, (await server.PostJsonAsync("/v1/completions", $$"""{"model":"{{M}}","prompt":"x","max_tokens":1}""")).GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    private static GenerationScheduler Scheduler(FrontEndServer server) => server.App.Services.GetRequiredService<GenerationScheduler>();
}
