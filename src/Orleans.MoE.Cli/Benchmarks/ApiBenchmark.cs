using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.MoE.Api.Hosting;
using Orleans.MoE.Cli.Cluster;
using Orleans.MoE.Cli.Commands;
using Orleans.MoE.Grains.Catalog;
using Orleans.MoE.Grains.Diagnostics;
using Orleans.MoE.Grains.Generation;
using Orleans.MoE.Grains.Hosting;

namespace Orleans.MoE.Cli.Benchmarks;

/// <summary>Figures of one way of asking for completions.</summary>
internal sealed record RequestFigures(
    double RequestsPerSecond,
    double TokensPerSecond,
    double TimeToFirstTokenMsP50,
    double TimeToFirstTokenMsP99,
    double InterTokenMsP50,
    double InterTokenMsP99);

/// <summary>Result of <c>moe bench api</c>.</summary>
internal sealed record ApiBenchmarkResult(
    string Model,
    string Server,
    int Concurrency,
    int Requests,
    int TokensPerRequest,
    RequestFigures Api,
    RequestFigures Direct,
    double TimeToFirstTokenP50Ratio,
    double TargetRatio);

/// <summary>Where the benchmark sends its requests: the front end's URL and the mesh it serves.</summary>
internal sealed record ApiBenchmarkTarget(string Url, string? ApiKey, IReadOnlyList<System.Net.IPEndPoint> Gateways, string ClusterId, string? Model);

/// <summary>
/// The front end against an Orleans client of the mesh, in the same run: <c>requests</c> streamed greedy
/// completions, <c>concurrency</c> at a time, (a) through the OpenAI-compatible API (HTTP, server-sent
/// events) and (b) straight to the mesh through a cluster client (<see cref="MeshClient"/>). Requests/s
/// and tokens/s: each way alone, alternating runs, the best of three. Latencies (time to first token,
/// inter-token, measured at the caller): both ways interleaved request by request, three runs pooled.
/// Without a target, it starts one: a silo serving the model and a front end that reaches it through the
/// Orleans client, as in a real deployment, all in this process.
/// </summary>
internal static class ApiBenchmark
{
    private const int Repetitions = 3;
    private const double TargetRatio = 1.10;
    private const string Prompt = "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n";

    public static async Task<ApiBenchmarkResult> RunAsync(ApiBenchmarkTarget? target, string modelDirectory, int concurrency, int requests, int tokens, CancellationToken cancellationToken)
    {
        await using var hosted = target is null ? await SelfHosted.StartAsync(modelDirectory) : null;
        target ??= hosted!.Target;
        await using var client = await MeshConnection.ConnectAsync(target.Gateways, target.ClusterId, ClusterConnection.EnvironmentTls(), cancellationToken);
        var model = target.Model ?? (await client.GrainFactory.GetGrain<IMeshInfoGrain>("mesh").GetModelsAsync()).Single();
        var info = await client.GrainFactory.GetGrain<IModelGrain>(model).GetInfoAsync();
        var ids = await client.GrainFactory.GetGrain<IModelGrain>(model).EncodeAsync(Prompt);
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency + 4 }) { BaseAddress = new Uri(target.Url), Timeout = TimeSpan.FromMinutes(5) };
        if (target.ApiKey is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", target.ApiKey);
        }

        var body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["model"] = model, ["prompt"] = Prompt, ["max_tokens"] = tokens, ["temperature"] = 0, ["stream"] = true,
        });
        var mesh = new MeshClient(client.GrainFactory);
        var request = new GenerationRequest(model, ids, tokens, []);

        Func<Task<List<long>>> throughApi = () => ThroughApiAsync(http, body, cancellationToken);
        Func<Task<List<long>>> direct = () => DirectAsync(mesh, request, cancellationToken);

        // Warm-up of both ways. Then throughput: alternating runs of each way alone, the best of each.
        await RunAsync(concurrency, 2 * concurrency, [throughApi, direct], [new Samples(), new Samples()]);
        var ways = new[] { throughApi, direct };
        var rates = new double[2];
        var tokenRates = new double[2];
        for (var run = 0; run < Repetitions; run++)
        {
            for (var way = 0; way < ways.Length; way++)
            {
                var samples = new Samples();
                var seconds = await RunAsync(concurrency, requests, [ways[way]], [samples]);
                rates[way] = Math.Max(rates[way], requests / seconds);
                tokenRates[way] = Math.Max(tokenRates[way], samples.Tokens / seconds);
            }
        }

        // Latency: both ways interleaved request by request (each worker alternates), so they share the
        // machine's state at every moment; the samples of all runs pooled.
        var apiLatency = new Samples();
        var directLatency = new Samples();
        for (var run = 0; run < Repetitions; run++)
        {
            await RunAsync(concurrency, 2 * requests, ways, [apiLatency, directLatency]);
        }

        var api = apiLatency.Figures(rates[0], tokenRates[0]);
        var straight = directLatency.Figures(rates[1], tokenRates[1]);
        return new ApiBenchmarkResult(info.Name, target.Url, concurrency, requests, tokens, api, straight,
            api.TimeToFirstTokenMsP50 / straight.TimeToFirstTokenMsP50, TargetRatio);
    }

    /// <summary>Times to first token and between tokens (ms), and tokens, of one way's requests.</summary>
    private sealed class Samples
    {
        private readonly List<double> _firsts = [];
        private readonly List<double> _gaps = [];

        public long Tokens { get; private set; }

        public void Add(long begun, List<long> arrivals)
        {
            lock (_firsts)
            {
                _firsts.Add(Stopwatch.GetElapsedTime(begun, arrivals[0]).TotalMilliseconds);
                _gaps.AddRange(arrivals.Zip(arrivals.Skip(1)).Select(p => Stopwatch.GetElapsedTime(p.First, p.Second).TotalMilliseconds));
                Tokens += arrivals.Count;
            }
        }

        public RequestFigures Figures(double requestsPerSecond, double tokensPerSecond) => new(
            requestsPerSecond, tokensPerSecond,
            LatencyRecorder.Percentile(_firsts, 50), LatencyRecorder.Percentile(_firsts, 99),
            LatencyRecorder.Percentile(_gaps, 50), LatencyRecorder.Percentile(_gaps, 99));
    }

    /// <summary>
    /// <paramref name="requests"/> calls, <paramref name="concurrency"/> at a time: call i is made with
    /// <c>calls[i % n]</c> and sampled into <c>samples[i % n]</c>. Returns the seconds it took.
    /// </summary>
    private static async Task<double> RunAsync(int concurrency, int requests, Func<Task<List<long>>>[] calls, Samples[] samples)
    {
        var next = -1;
        var started = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < requests)
            {
                var begun = Stopwatch.GetTimestamp();
                samples[i % samples.Length].Add(begun, await calls[i % calls.Length]());
            }
        }));
        return Stopwatch.GetElapsedTime(started).TotalSeconds;
    }

    /// <summary>One streamed completion through the API: the arrival time of each piece of text.</summary>
    private static async Task<List<long>> ThroughApiAsync(HttpClient http, string body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"the API answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken)}");
        }

        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
        var arrivals = new List<long>();
        while (await reader.ReadLineAsync(cancellationToken) is { } line && line != "data: [DONE]")
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                arrivals.Add(Stopwatch.GetTimestamp());
            }
        }

        return arrivals;
    }

    /// <summary>The same completion straight from the mesh: the arrival time of each token.</summary>
    private static async Task<List<long>> DirectAsync(MeshClient mesh, GenerationRequest request, CancellationToken cancellationToken)
    {
        var arrivals = new List<long>();
        await foreach (var _ in mesh.GenerateAsync(request, cancellationToken))
        {
            arrivals.Add(Stopwatch.GetTimestamp());
        }

        return arrivals;
    }

    /// <summary>A silo serving the model and a front end reaching it through an Orleans client, in this process.</summary>
    private sealed class SelfHosted(LocalMesh cluster, WebApplication frontEnd, ApiBenchmarkTarget target) : IAsyncDisposable
    {
        public ApiBenchmarkTarget Target { get; } = target;

        public static async Task<SelfHosted> StartAsync(string directory)
        {
            var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory)));
            var cluster = await LocalMesh.StartAsync(1, new Dictionary<string, string> { [name] = Path.GetFullPath(directory) });
            var gateways = new[] { cluster.Gateway(0) };
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
            builder.Services.AddMoEApi();
            builder.AddMeshClient(gateways, cluster.ClusterId);
            var app = builder.Build();
            app.MapMoEApi();
            await app.StartAsync();
            using var ready = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!(await ready.GetAsync("/readyz")).IsSuccessStatusCode && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }

            return new SelfHosted(cluster, app, new ApiBenchmarkTarget(app.Urls.First(), null, gateways, cluster.ClusterId, name));
        }

        public async ValueTask DisposeAsync()
        {
            await frontEnd.StopAsync();
            await frontEnd.DisposeAsync();
            await cluster.DisposeAsync();
        }
    }
}
