using System.Diagnostics;
using Orleans.MoE.Grains.Diagnostics;
using Orleans.MoE.Grains.Generation;
using Orleans.MoE.Models;
using Orleans.MoE.Models.Layers;
using Orleans.MoE.Cli.Cluster;
using Orleans.MoE.Grains.Hosting;

namespace Orleans.MoE.Cli.Benchmarks;

/// <summary>Serving figures of one way of running the model.</summary>
internal sealed record ServingFigures(
    double TokensPerSecond,
    double TimeToFirstTokenMsP50,
    double TimeToFirstTokenMsP99,
    double InterTokenMsP50,
    double InterTokenMsP99);

/// <summary>Result of <c>moe bench cluster</c>.</summary>
internal sealed record ClusterBenchmarkResult(
    string Model,
    int Silos,
    bool OneGateway,
    int Concurrency,
    int PromptTokens,
    int TokensPerSequence,
    int Cores,
    ServingFigures Mesh,
    ServingFigures SingleProcess,
    double ThroughputRatio,
    double DispatchOverheadUsP50,
    double DispatchOverheadUsP99,
    long DispatchSamples);

/// <summary>
/// The mesh against one process, in the same run on the same cores: <c>concurrency</c> sequences of
/// greedy tokens (a) through N silos in this process, talking over real TCP on loopback, reached by
/// cluster clients (one per silo, the sequences dealt out among them, unless oneGateway), and (b) by
/// the model in place with the same continuous batching. Time to first token
/// is measured at the client; inter-token latency at the scheduler (the client reads tokens in
/// long-poll batches). Dispatch overhead: per layer and step, from the gate sending to its having every
/// expert result, minus the slowest destination's own compute.
/// </summary>
internal static class ClusterBenchmark
{
    private const int Repetitions = 3;

    public static async Task<ClusterBenchmarkResult> RunAsync(string directory, int silos, int concurrency, int promptTokens, int tokens, bool oneGateway, CancellationToken cancellationToken)
    {
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(directory));
        using var model = ModelLoader.Load(directory);
        var prompts = Enumerable.Range(0, concurrency)
            .Select(s => Enumerable.Range(0, promptTokens).Select(i => 3 + ((s * 131) + (i * 7919)) % (model.VocabSize - 3)).ToArray())
            .ToArray();

        // The balancer stays put: a migration in the middle of a few-second run would measure the move, not serving.
        await using var cluster = await LocalMesh.StartAsync(silos, new Dictionary<string, string> { [name] = directory }, o => o.Balancer.Enabled = false, cancellationToken);
        var experts = model.Layers.Select(l => l.FeedForward).OfType<SparseMoeBlock>().Sum(b => b.ExpertCount);
        await cluster.WaitForExpertsAsync(experts, TimeSpan.FromSeconds(60), cancellationToken: cancellationToken);

        // One client per silo, each using that silo as its gateway, and the sequences dealt out among them:
        // every silo schedules its share, as behind a front end that spreads its requests. With
        // oneGateway, every sequence runs on the first silo's scheduler.
        var connections = new List<MeshConnection>();
        await using var closing = new AsyncDisposables(connections);
        foreach (var silo in oneGateway ? [0] : Enumerable.Range(0, silos))
        {
            connections.Add(await cluster.ConnectAsync([silo], cancellationToken));
        }

        var clients = connections.Select(c => new MeshClient(c.GrainFactory)).ToList();

        // Warm-up of both ways (page cache, connections, the JIT's optimised tiers), a second each.
        var warmup = Stopwatch.StartNew();
        while (warmup.Elapsed < TimeSpan.FromSeconds(1))
        {
            SingleProcess(model, prompts, Math.Min(tokens, 8));
        }

        warmup.Restart();
        while (warmup.Elapsed < TimeSpan.FromSeconds(1))
        {
            await MeshAsync(clients, name, prompts, Math.Min(tokens, 8), cancellationToken);
        }

        // Alternating runs, so both see the same machine; the better of each is kept.
        var metrics = Enumerable.Range(0, silos).Select(cluster.Service<MeshMetrics>).ToList();
        ServingFigures? single = null, mesh = null;
        List<double> dispatch = [];
        for (var run = 0; run < Repetitions; run++)
        {
            var local = SingleProcess(model, prompts, tokens);
            single = single is null || local.TokensPerSecond > single.TokensPerSecond ? local : single;
            foreach (var recorder in metrics.SelectMany(m => new[] { m.DispatchOverhead, m.InterTokenLatency, m.TimeToFirstToken }))
            {
                recorder.Clear();
            }

            var (meshSeconds, firstTokens) = await MeshAsync(clients, name, prompts, tokens, cancellationToken);
            var interToken = metrics.SelectMany(m => m.InterTokenLatency.Samples()).Select(us => us / 1000).ToList();
            var figures = new ServingFigures(
                concurrency * tokens / meshSeconds,
                LatencyRecorder.Percentile(firstTokens, 50), LatencyRecorder.Percentile(firstTokens, 99),
                LatencyRecorder.Percentile(interToken, 50), LatencyRecorder.Percentile(interToken, 99));
            if (mesh is null || figures.TokensPerSecond > mesh.TokensPerSecond)
            {
                mesh = figures;
                dispatch = metrics.SelectMany(m => m.DispatchOverhead.Samples()).ToList();
            }
        }

        return new ClusterBenchmarkResult(name, silos, oneGateway, concurrency, promptTokens, tokens, Environment.ProcessorCount, mesh!, single!,
            mesh!.TokensPerSecond / single!.TokensPerSecond,
            LatencyRecorder.Percentile(dispatch, 50), LatencyRecorder.Percentile(dispatch, 99), dispatch.Count);
    }

    /// <summary>Continuous batching in place: every sequence advances one token per batched step.</summary>
    private static ServingFigures SingleProcess(CausalLanguageModel model, int[][] prompts, int tokens)
    {
        var caches = prompts.Select(p => model.CreateCache(p.Length + tokens)).ToArray();
        var inputs = prompts.Select(p => (int[])p.Clone()).ToArray();
        var steps = new List<double>();
        var started = Stopwatch.GetTimestamp();
        double firstToken = 0;
        for (var t = 0; t < tokens; t++)
        {
            var step = Stopwatch.GetTimestamp();
            var logits = model.ForwardBatch(inputs.Select((x, i) => new SequenceStep(x, caches[i])).ToArray());
            for (var i = 0; i < inputs.Length; i++)
            {
                inputs[i] = [System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits[i])];
            }

            if (t == 0)
            {
                firstToken = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            }
            else
            {
                steps.Add(Stopwatch.GetElapsedTime(step).TotalMilliseconds);
            }
        }

        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        return new ServingFigures(prompts.Length * tokens / seconds, firstToken, firstToken,
            LatencyRecorder.Percentile(steps, 50), LatencyRecorder.Percentile(steps, 99));
    }

    /// <summary>Every prompt through the mesh at once; returns the wall time and each sequence's time to first token (ms).</summary>
    private static async Task<(double Seconds, List<double> FirstTokens)> MeshAsync(List<MeshClient> clients, string model, int[][] prompts, int tokens, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var firstTokens = await Task.WhenAll(prompts.Select(async (prompt, i) =>
        {
            var client = clients[i % clients.Count];
            var begun = Stopwatch.GetTimestamp();
            double first = 0;
            var count = 0;
            await foreach (var _ in client.GenerateAsync(new GenerationRequest(model, prompt, tokens, []), cancellationToken))
            {
                if (count++ == 0)
                {
                    first = Stopwatch.GetElapsedTime(begun).TotalMilliseconds;
                }
            }

            return first;
        }));
        return (Stopwatch.GetElapsedTime(started).TotalSeconds, firstTokens.ToList());
    }
}
