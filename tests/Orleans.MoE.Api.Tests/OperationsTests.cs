using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Orleans.MoE.Api.Tests;

/// <summary>Health, readiness, Prometheus metrics and the dashboard's data.</summary>
[Collection(EmbeddedServerGroup.NAME)]
public sealed partial class OperationsTests(EmbeddedServerFixture fixture)
{
    private FrontEndServer Server => fixture.Server;

    [Fact]
    public async Task Health_and_readiness_answer()
    {
        using var health = await Server.Http.GetAsync("/healthz");
        using var ready = await Server.Http.GetAsync("/readyz");

        Assert.Equal(200, (int)health.StatusCode);
        Assert.Equal(200, (int)ready.StatusCode);
        var body = JsonDocument.Parse(await ready.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("ready", body.GetProperty("status").GetString());
        Assert.Equal("ready", body.GetProperty("models").GetProperty(FrontEndServer.Model).GetString());
    }

    [Fact]
    public async Task Metrics_are_prometheus_text_with_the_meshs_orleans_aspnetcores_and_the_runtimes_series()
    {
        await Server.PostJsonAsync("/v1/completions", $$"""{"model":"{{FrontEndServer.Model}}","prompt":"import os","max_tokens":8}""");

        // The mesh's figures are read at most once a second: wait for a scrape that includes the request's expert load.
        using var response = await Server.Http.GetAsync("/metrics");
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(await Eventually.TrueAsync(async () =>
        {
            text = await Server.Http.GetStringAsync("/metrics");
            return Regex.IsMatch(text, @"(?m)^moe_expert_load_tokens\{[^}]*layer=""0""[^}]*\} [1-9]");
        }, 20), "a scrape shows the request's expert load: " + string.Join("\n", text.Split('\n').Where(l => l.StartsWith("moe_mesh", StringComparison.Ordinal) || l.StartsWith("moe_expert_load", StringComparison.Ordinal)).Take(10)));

        Assert.StartsWith("text/plain", response.Content.Headers.ContentType!.ToString(), StringComparison.Ordinal);
        Assert.Contains("version=0.0.4", response.Content.Headers.ContentType!.ToString(), StringComparison.Ordinal);
        var samples = new List<(string Name, string Labels, double Value)>();
        var typed = new HashSet<string>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                Assert.True(typed.Add(line.Split(' ')[2]), $"one TYPE per family: {line}");
                continue;
            }

            if (line.StartsWith("# HELP ", StringComparison.Ordinal))
            {
                continue;
            }

            var match = SampleLine().Match(line);
            Assert.True(match.Success, $"a valid sample line: {line}");
            samples.Add((match.Groups[1].Value, match.Groups[2].Value, double.Parse(match.Groups[3].Value, CultureInfo.InvariantCulture)));
        }

        // The mesh's meter is this host's alone (other front ends of this test run have their own); the shared fixture serves other tests' requests too.
        double Total(string name) => samples.Where(s => s.Name == name).Sum(s => s.Value);
        Assert.True(Total("moe_api_tokens_total") >= 8);
        Assert.Equal(1, Total("moe_mesh_up"));
        Assert.Equal(1, Total("moe_mesh_silos"));
        foreach (var histogram in new[] { "moe_api_time_to_first_token_seconds", "moe_api_inter_token_latency_seconds", "gen_ai_server_time_to_first_token_seconds", "moe_gate_dispatch_overhead_seconds" })
        {
            var buckets = samples.Where(s => s.Name == histogram + "_bucket").GroupBy(s => Regex.Replace(s.Labels, @",?le=""[^""]*""", ""), s => s.Value).ToList();
            Assert.NotEmpty(buckets);
            Assert.All(buckets, series => Assert.True(series.Zip(series.Skip(1)).All(p => p.First <= p.Second), $"{histogram} buckets are cumulative"));
            Assert.Equal(Total(histogram + "_count"), buckets.Sum(series => series.Last()));
            Assert.True(Total(histogram + "_count") > 0, $"{histogram} observed something");
        }

        // The mesh: the whole mesh as read through Orleans (per silo and expert), and this silo's own instruments.
        Assert.Contains(samples, s => s.Name == "moe_silo_queue_depth");
        Assert.Contains(samples, s => s.Name == "moe_silo_activations" && s.Value > 0);
        Assert.Contains(samples, s => s.Name == "moe_silo_expert_call_overhead_microseconds" && s.Labels.Contains("quantile=\"0.99\"", StringComparison.Ordinal));
        Assert.Contains(samples, s => s.Name == "moe_expert_load_tokens" && s.Labels.Contains("layer=\"0\"", StringComparison.Ordinal) && s.Value > 0);
        Assert.True(Total("moe_scheduler_tokens_total") >= 8);

        // ASP.NET Core's request metrics (by route and status), Orleans' own, the .NET runtime's.
        Assert.Contains(samples, s => s.Name == "http_server_request_duration_seconds_count" && s.Labels.Contains("http_route=\"/v1/completions\"", StringComparison.Ordinal)
            && s.Labels.Contains("http_response_status_code=\"200\"", StringComparison.Ordinal) && s.Value >= 1);
        Assert.Contains(samples, s => s.Name == "http_server_active_requests");
        Assert.Contains(samples, s => s.Name == "orleans_app_requests_latency_milliseconds_count" && s.Value > 0);
        Assert.Contains(samples, s => s.Name == "orleans_catalog_activations" && s.Value > 0);
        Assert.Contains(samples, s => s.Name == "dotnet_gc_heap_total_allocated_bytes_total" && s.Value > 0);
    }

    [Fact]
    public async Task The_dashboard_data_shows_every_expert_on_its_silo()
    {
        await Server.PostJsonAsync("/v1/completions", $$"""{"model":"{{FrontEndServer.Model}}","prompt":"import sys","max_tokens":4}""");

        // The mesh's figures are read at most once a second: wait for a snapshot that counts the request's load.
        var mesh = default(JsonElement);
        Assert.True(await Eventually.TrueAsync(async () =>
        {
            mesh = JsonDocument.Parse(await Server.Http.GetStringAsync("/api/mesh")).RootElement;
            return mesh.GetProperty("models").EnumerateArray().SelectMany(m => m.GetProperty("placement").EnumerateArray())
                .Sum(p => p.GetProperty("replicas").EnumerateArray().Sum(r => r.GetProperty("tokens").GetInt64())) > 0;
        }, 20), "a snapshot counts the request's load");

        var silo = Assert.Single(mesh.GetProperty("silos").EnumerateArray());
        Assert.Equal("S1", silo.GetProperty("name").GetString());
        Assert.Equal([FrontEndServer.Model], silo.GetProperty("models").EnumerateArray().Select(m => m.GetString()));
        Assert.True(silo.GetProperty("experts").GetInt32() > 0);
        var model = Assert.Single(mesh.GetProperty("models").EnumerateArray());
        var experts = model.GetProperty("experts").GetInt32();
        var layers = model.GetProperty("moe_layers").GetArrayLength();
        Assert.Equal("mixtral", model.GetProperty("architecture").GetString());
        var placement = model.GetProperty("placement").EnumerateArray().ToList();
        Assert.Equal(layers * experts, placement.Count);
        Assert.All(placement, p => Assert.Equal("S1", p.GetProperty("replicas")[0].GetProperty("silo").GetString()));
        Assert.True(placement.Sum(p => p.GetProperty("replicas").EnumerateArray().Sum(r => r.GetProperty("tokens").GetInt64())) > 0, "load is counted");
    }

    [GeneratedRegex(@"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*=""(?:[^""\\]|\\.)*"",?)*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$")]
    private static partial Regex SampleLine();
}
