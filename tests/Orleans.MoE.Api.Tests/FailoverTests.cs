using System.Text;
using System.Text.Json;
using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Generation;
using Orleans.TestingHost;

namespace Orleans.MoE.Api.Tests;

/// <summary>
/// A silo dies while streaming requests run through the front end (the runtime's client to three silos):
/// no request fails, and every output is the one of the run without the failure.
/// </summary>
public sealed class FailoverTests
{
    private static readonly string[] s_prompts =
    [
        "def fibonacci(n):", "import numpy as np\n", "class Stack:\n    def", "for i in range(10):", "# sort a list\ndef", "x = [1, 2, 3]\n",
    ];

    [Fact]
    public async Task Killing_the_silo_running_the_sequences_fails_no_stream()
    {
        var (metrics, logs) = await RunAsync(mesh => mesh.Silos.OrderByDescending(s => MeshCluster.Service<GenerationScheduler>(s).Queued).First());

        // The front end resubmitted the lost sequences (prompt plus the tokens already streamed) elsewhere, and said so.
        Assert.Matches(@"(?m)^moe_api_resubmissions_total(\{[^}]*\})? [1-9]", metrics);
        Assert.Contains(logs, l => l.StartsWith("Warning", StringComparison.Ordinal) && l.Contains("was lost (", StringComparison.Ordinal) && l.Contains("resubmitting it with the", StringComparison.Ordinal));
    }

    [Fact]
    public Task Killing_a_silo_hosting_experts_fails_no_stream() =>
        RunAsync(mesh => mesh.Silos.First(s => MeshCluster.Service<GenerationScheduler>(s).Queued == 0 && MeshCluster.Service<LocalExperts>(s).Hosted.Count > 0));

    [Fact]
    public async Task A_sequence_whose_every_silo_died_ends_with_a_clear_error_whole_or_streamed()
    {
        await using var mesh = await MeshCluster.StartAsync(1, new Dictionary<string, string> { [FrontEndServer.Model] = RepositoryPaths.DemoModel });
        await using var server = await FrontEndServer.StartForClusterAsync(mesh);
        var silo = mesh.Silos[0];

        // One streamed and one whole completion running on the only silo when it dies.
        var whole = server.PostAsync("/v1/completions", $$"""{"model":"{{FrontEndServer.Model}}","prompt":"def fibonacci(n):","max_tokens":1000,"temperature":0}""");
        using var streamed = await server.PostAsync("/v1/completions", $$"""{"model":"{{FrontEndServer.Model}}","prompt":"import os","max_tokens":1000,"temperature":0,"stream":true}""");
        Assert.Equal(200, (int)streamed.StatusCode);
        using var reader = new StreamReader(await streamed.Content.ReadAsStreamAsync());
        Assert.StartsWith("data: {", await reader.ReadLineAsync());
        Assert.True(await Eventually.TrueAsync(() => MeshCluster.Service<GenerationScheduler>(silo).Queued == 2, 30), "both sequences run");
        await mesh.Cluster.KillSiloAsync(silo);

        // Streamed: the pieces so far, then an error event, then the end of the stream.
        var events = new List<string>();
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                events.Add(line[6..]);
            }
        }

        Assert.True(events.Any(e => e != "[DONE]"), $"the stream ends with an error event, but after its first event it sent: {string.Join(" | ", events)}");
        var last = JsonDocument.Parse(events.Last(e => e != "[DONE]")).RootElement;
        Assert.True(last.TryGetProperty("error", out var streamError), $"the stream ends with an error event: {string.Join(" | ", events.TakeLast(3))}");
        Assert.Equal("mesh_unavailable", streamError.GetProperty("code").GetString());
        Assert.Contains("lost", streamError.GetProperty("message").GetString(), StringComparison.Ordinal);

        // Whole: the status and the error body.
        using var answer = await whole;
        var body = await answer.Content.ReadAsStringAsync();
        Assert.True((int)answer.StatusCode == 503, body);
        var error = JsonDocument.Parse(body).RootElement.GetProperty("error");
        Assert.Equal("mesh_unavailable", error.GetProperty("code").GetString());
        Assert.Equal("server_error", error.GetProperty("type").GetString());
        Assert.True(answer.Headers.Contains("Retry-After"));
        Assert.Contains(server.Logs.Lines, l => l.Contains("giving up", StringComparison.Ordinal));
    }

    /// <summary>Streams every prompt once undisturbed, then again killing a silo mid-stream; returns /metrics and the front end's log afterwards.</summary>
    private static async Task<(string Metrics, IReadOnlyList<string> Logs)> RunAsync(Func<MeshCluster, InProcessSiloHandle> victim)
    {
        await using var mesh = await MeshCluster.StartAsync(3, new Dictionary<string, string> { [FrontEndServer.Model] = RepositoryPaths.DemoModel });
        await mesh.WaitForSpreadAsync(FrontEndServer.Model);
        await using var server = await FrontEndServer.StartForClusterAsync(mesh);
        var baseline = await Task.WhenAll(s_prompts.Select(p => StreamAsync(server, p, null)));

        var streaming = new CountdownEvent(s_prompts.Length);
        var runs = s_prompts.Select(p => StreamAsync(server, p, streaming)).ToArray();
        Assert.True(streaming.Wait(TimeSpan.FromSeconds(30)), "every stream has begun");
        var killed = victim(mesh);
        Assert.False(runs.Any(r => r.IsCompleted), "streams ended before the kill: " + string.Join("; ", runs.Where(r => r.IsCompleted).Select(r => r.Exception?.InnerException?.Message ?? "completed")));
        await mesh.Cluster.KillSiloAsync(killed);
        var outputs = await Task.WhenAll(runs);

        Assert.Equal(baseline, outputs);
        Assert.All(outputs, o => Assert.True(o.Length > 100, $"a real answer: {o}"));
        Assert.DoesNotContain(mesh.Silos, s => s.SiloAddress.Equals(killed.SiloAddress));
        await mesh.WaitForAllExpertsAsync(FrontEndServer.Model); // The dead silo's experts live on the others.
        Assert.True(await Eventually.TrueAsync(() => MeshEvents(server).Any(e => e.Contains($"silo {killed.SiloAddress} left the mesh", StringComparison.Ordinal)), 10),
            "the dashboard's events tell of the failure");
        return (await server.Http.GetStringAsync("/metrics"), server.Logs.Lines);
    }

    private static IEnumerable<string> MeshEvents(FrontEndServer server) =>
        JsonDocument.Parse(server.Http.GetStringAsync("/api/mesh").Result).RootElement.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("description").GetString()!);

    /// <summary>A greedy streamed chat completion's text; signals <paramref name="begun"/> after a few pieces.</summary>
    private static async Task<string> StreamAsync(FrontEndServer server, string prompt, CountdownEvent? begun)
    {
        var body = $$"""{"model":"{{FrontEndServer.Model}}","messages":[{"role":"user","content":{{JsonSerializer.Serialize(prompt)}}}],"max_tokens":300,"temperature":0,"stream":true}""";
        using var response = await server.PostAsync("/v1/chat/completions", body);
        Assert.Equal(200, (int)response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var text = new StringBuilder();
        var pieces = 0;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line == "data: [DONE]")
            {
                return text.ToString();
            }

            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                var chunk = JsonDocument.Parse(line[6..]).RootElement;
                Assert.False(chunk.TryGetProperty("error", out var error), $"the stream failed: {error}");
                if (chunk.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("content", out var content))
                {
                    text.Append(content.GetString());
                }

                if (++pieces == 3)
                {
                    begun?.Signal();
                }
            }
        }

        throw new InvalidOperationException($"the stream ended without [DONE] after: {text}");
    }
}
