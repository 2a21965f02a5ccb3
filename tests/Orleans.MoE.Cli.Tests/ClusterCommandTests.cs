using System.Globalization;
using System.Text.Json;
using Orleans.MoE.Cli.Cluster;

namespace Orleans.MoE.Cli.Tests;

/// <summary>The commands that reach a running cluster, as moe processes, against Orleans silos started in this test process (real TCP).</summary>
public sealed class ClusterCommandTests : IAsyncLifetime
{
    private LocalMesh _cluster = null!;

    private string Gateway => $"127.0.0.1:{_cluster.Gateway(0).Port.ToString(CultureInfo.InvariantCulture)}";

    private string[] Connection => ["--gateway", Gateway, "--cluster-id", _cluster.ClusterId];

    public async Task InitializeAsync() =>
        _cluster = await LocalMesh.StartAsync(
            2,
            new Dictionary<string, string> { ["moe-tiny-py"] = Path.Combine(MoeProcess.RepositoryRoot, "models", "moe-tiny-py") },
            o => o.Balancer.Interval = TimeSpan.FromMilliseconds(300));

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task Generate_on_the_cluster_prints_what_generate_in_process_prints()
    {
        var (localExit, local, _) = await MoeProcess.RunAsync("generate", "--prompt", "def fibonacci(n):", "--max-tokens", "32");
        var (exit, remote, error) = await MoeProcess.RunAsync(["generate", "--prompt", "def fibonacci(n):", "--max-tokens", "32", .. Connection]);

        Assert.Equal(0, localExit);
        Assert.True(exit == 0, error);
        Assert.Equal(local, remote);
    }

    [Fact]
    public async Task Cluster_status_shows_the_silos_and_where_each_expert_lives()
    {
        await MoeProcess.RunAsync(["generate", "--prompt", "import os", "--max-tokens", "4", .. Connection]);

        // A balancing round reports the experts' load: ask until the status shows it.
        var status = default(JsonElement);
        Assert.True(await Eventually.TrueAsync(async () =>
        {
            var (exit, output, error) = await MoeProcess.RunAsync(["cluster", "status", "--json", .. Connection]);
            Assert.True(exit == 0, error);
            status = JsonDocument.Parse(output).RootElement;
            return status.GetProperty("models")[0].GetProperty("silos").EnumerateArray()
                .SelectMany(s => s.GetProperty("experts").EnumerateArray()).Any(e => e.GetProperty("tokens").GetInt64() > 0);
        }, 30), "the status shows the experts' load");
        Assert.Equal(2, status.GetProperty("silos").GetArrayLength());
        var meshes = status.GetProperty("silos").EnumerateArray().Select(s => s.GetProperty("mesh")).ToList();
        Assert.Equal(32, meshes.Sum(m => m.GetProperty("experts").GetInt32()));
        Assert.Equal(4, meshes.Sum(m => m.GetProperty("tokens_generated").GetInt64()));
        var model = status.GetProperty("models")[0];
        Assert.Equal("moe-tiny-py", model.GetProperty("model").GetString());
        var experts = model.GetProperty("silos").EnumerateArray().SelectMany(s => s.GetProperty("experts").EnumerateArray()).ToList();
        Assert.Equal(32, experts.Select(e => e.GetProperty("key").GetString()).Distinct().Count());
        Assert.Contains(experts, e => e.GetProperty("tokens").GetInt64() > 0);

        var (_, text, _) = await MoeProcess.RunAsync(["cluster", "status", .. Connection]);
        Assert.Contains("2 silo(s)", text);
        // S1, S2 in port order.
        var ports = System.Text.RegularExpressions.Regex.Matches(text, @"(?m)^  S(\d+)  S?[\d.]+:(\d+)")
            .Select(m => (Label: int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), Port: int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture))).ToList();
        Assert.Equal([1, 2], ports.Select(p => p.Label));
        Assert.True(ports[0].Port < ports[1].Port, text);
        Assert.Contains("together claim", text); // two silos on this host, each with 80 % of its memory
        Assert.DoesNotContain("NaN", text);
        Assert.Contains("layer 3: e0=S", text);
        Assert.Contains("dispatch p50", text);
    }

    [Fact]
    public async Task Wrong_cluster_id_and_unknown_model_fail_with_one_line()
    {
        var (exit, _, error) = await MoeProcess.RunAsync("cluster", "status", "--gateway", Gateway, "--cluster-id", "not-this-cluster");
        Assert.Equal(1, exit);
        Assert.StartsWith("error:", error.Trim());
        Assert.Single(error.Trim().Split('\n'));

        (exit, _, error) = await MoeProcess.RunAsync(["generate", "--prompt", "x", "--model", "nope", .. Connection]);
        Assert.Equal(1, exit);
        Assert.Contains("unknown model 'nope'", error);

        // The front end for a cluster it cannot reach (wrong cluster id, or a gateway nobody listens on): what to check.
        foreach (var args in new[] { Connection[..2].Concat(["--cluster-id", "not-this-cluster"]).ToArray(), ["--gateway", "127.0.0.1:1"] })
        {
            (exit, _, error) = await MoeProcess.RunAsync(["serve", "--urls", "http://127.0.0.1:0", .. args]);
            Assert.Equal(1, exit);
            var line = error.Trim().Split('\n')[^1];
            Assert.StartsWith("error: cannot reach cluster", line);
            Assert.Contains("--cluster-id", line);
            Assert.Contains("Silo:GatewayPort", line);
        }
    }

    [Fact]
    public async Task Bench_cluster_prints_the_mesh_and_single_process_figures()
    {
        var (exit, output, error) = await MoeProcess.RunAsync("bench", "cluster", "--silos", "2", "--concurrency", "2", "--tokens", "4", "--json");

        Assert.True(exit == 0, error);
        var result = JsonDocument.Parse(output).RootElement;
        Assert.Equal(2, result.GetProperty("silos").GetInt32());
        foreach (var part in new[] { "mesh", "single_process" })
        {
            Assert.True(result.GetProperty(part).GetProperty("tokens_per_second").GetDouble() > 0);
            Assert.True(result.GetProperty(part).GetProperty("time_to_first_token_ms_p50").GetDouble() > 0);
        }

        Assert.True(result.GetProperty("dispatch_samples").GetInt64() > 0);
        Assert.True(result.GetProperty("dispatch_overhead_us_p50").GetDouble() >= 0);
    }
}
