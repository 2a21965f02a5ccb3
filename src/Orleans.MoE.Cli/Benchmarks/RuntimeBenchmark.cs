using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Orleans.MoE.Cli.Cluster;
using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Transport;

namespace Orleans.MoE.Cli.Benchmarks;

/// <summary>The grain the benchmark calls: a tiny request, and tensor payloads.</summary>
[Alias("moe.bench.IBenchmarkGrain")]
public interface IBenchmarkGrain : IGrainWithIntegerKey
{
    [Alias("Ping")]
    Task<int> Ping(int value);

    /// <summary>Receives a payload and answers with its length.</summary>
    [Alias("Absorb")]
    Task<int> Absorb(TensorPayload payload);
}

[Orleans.Placement.PreferLocalPlacement]
internal sealed class BenchmarkGrain : Grain, IBenchmarkGrain
{
    public Task<int> Ping(int value) => Task.FromResult(value + 1);

    public Task<int> Absorb(TensorPayload payload)
    {
        using (payload)
        {
            return Task.FromResult(payload.Bytes.Length);
        }
    }
}

/// <param name="LatencyCalls">Calls sampled for latency, per kind (same-silo, cross-silo, raw echo).</param>
/// <param name="Concurrency">Calls in flight while measuring calls per second.</param>
/// <param name="ThroughputSeconds">How long each calls-per-second measurement runs.</param>
/// <param name="PayloadRepetitions">Alternating batches (of about 64 MiB each) per payload size and side.</param>
public sealed record RuntimeBenchmarkOptions(int LatencyCalls = 3000, int Concurrency = 32, double ThroughputSeconds = 2, int PayloadRepetitions = 8);

public sealed record LatencyFigures(double CallsPerSecond, double P50Microseconds, double P99Microseconds);

/// <param name="FractionOfRaw">The grain call's rate over the raw socket's.</param>
/// <param name="DataChannelFractionOfRaw">The data channel's rate (an expert batch of that size to another silo) over the raw socket's.</param>
public sealed record PayloadFigures(
    int Bytes, double GrainMegabytesPerSecond, double DataChannelMegabytesPerSecond, double RawSocketMegabytesPerSecond, double FractionOfRaw, double DataChannelFractionOfRaw);

/// <param name="DataChannel">A one-row expert batch (64 bytes) to the other silo's data channel and its answer.</param>
public sealed record RuntimeBenchmarkResult(
    LatencyFigures SameSilo,
    LatencyFigures CrossSilo,
    LatencyFigures DataChannel,
    LatencyFigures RawTcpEcho,
    double CrossSiloP50OverRaw,
    double DataChannelP50OverRaw,
    IReadOnlyList<PayloadFigures> Payloads);

/// <summary>
/// Orleans grain calls per second and latency, same-silo and cross-silo on loopback, the mesh's data
/// channel (what carries expert batches between silos), tensor payload throughput through both, and in
/// the same run a raw TCP echo on loopback as the baseline they are measured against. The data channel's
/// batches name a model the other silo does not serve, so its answer is the slot list alone, like the
/// echo's 4 bytes: both measure one way's bytes.
/// </summary>
public static class RuntimeBenchmark
{
    public static async Task<RuntimeBenchmarkResult> RunAsync(RuntimeBenchmarkOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var cluster = await LocalMesh.StartAsync(2, new Dictionary<string, string>(), cancellationToken: cancellationToken).ConfigureAwait(false);
        await using var clusterScope = cluster.ConfigureAwait(false);
        var caller = cluster.GrainFactory(0);
        var local = caller.GetGrain<IBenchmarkGrain>(1);
        // Prefer-local placement: activated by the other silo, the grain lives there.
        var remote = caller.GetGrain<IBenchmarkGrain>(2);
        await cluster.GrainFactory(1).GetGrain<IBenchmarkGrain>(2).Ping(0).ConfigureAwait(false);
        await local.Ping(0).ConfigureAwait(false);

        var echo = await RawEcho.StartAsync().ConfigureAwait(false);
        await using var echoScope = echo.ConfigureAwait(false);
        var channel = cluster.Service<DataChannelClient>(0);
        var other = cluster.Service<ILocalSiloDetails>(1).SiloAddress;
        channel.Learn(other, cluster.Service<DataChannelServer>(1).Endpoint!.ToString());
        using var small = Batch(1, 16);
        Task Channel(ExpertBatch batch) => channel.ExecuteAsync(other, batch, cancellationToken).ContinueWith(
            t => t.GetAwaiter().GetResult().Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

        // Latencies are sampled in alternating batches so the grain calls and the raw baseline see the
        // same machine (this one is noisy); throughput is measured after.
        Func<Task>[] calls = [() => local.Ping(1), () => remote.Ping(1), () => Channel(small), () => echo.RoundTripAsync(64)];
        var latencies = await LatenciesAsync(calls, options).ConfigureAwait(false);
        var rates = new double[calls.Length];
        for (var c = 0; c < calls.Length; c++)
        {
            // The raw echo has one connection and no multiplexing: one call at a time.
            var concurrency = c == calls.Length - 1 ? options with { Concurrency = 1 } : options;
            rates[c] = await ThroughputAsync(calls[c], concurrency, cancellationToken).ConfigureAwait(false);
        }

        var (sameSilo, crossSilo, data, raw) = (latencies[0] with { CallsPerSecond = rates[0] }, latencies[1] with { CallsPerSecond = rates[1] },
            latencies[2] with { CallsPerSecond = rates[2] }, latencies[3] with { CallsPerSecond = rates[3] });

        var payloads = new List<PayloadFigures>();
        foreach (var size in new[] { 1 << 20, 16 << 20 })
        {
            var bytes = new byte[size];
            Random.Shared.NextBytes(bytes);
            var payload = TensorPayload.Over(Enumerable.Range(0, size / 4).Select(i => (float)i).ToArray(), 0, 1, size / 4);
            using var batch = Batch(size / 4 / 1024, 1024);
            Func<Task>[] sends = [() => remote.Absorb(payload), () => Channel(batch), () => echo.SendAsync(bytes)];
            foreach (var send in sends)
            {
                await send().ConfigureAwait(false);
            }

            var perSecond = await PayloadRatesAsync(sends, size, options.PayloadRepetitions).ConfigureAwait(false);
            payloads.Add(new PayloadFigures(size, perSecond[0] / 1e6, perSecond[1] / 1e6, perSecond[2] / 1e6, perSecond[0] / perSecond[2], perSecond[1] / perSecond[2]));
        }

        return new RuntimeBenchmarkResult(sameSilo, crossSilo, data, raw, crossSilo.P50Microseconds / raw.P50Microseconds, data.P50Microseconds / raw.P50Microseconds, payloads);
    }

    /// <summary>A batch of <paramref name="rows"/> x <paramref name="columns"/> floats for one expert of a model no silo serves.</summary>
    private static ExpertBatch Batch(int rows, int columns)
    {
        var payload = TensorPayload.Rent(rows, columns);
        payload.Values.Fill(1);
        return new ExpertBatch("benchmark-no-such-model", 0, [new ExpertSlot(0, 0, rows)], payload);
    }

    private static async Task<LatencyFigures[]> LatenciesAsync(Func<Task>[] calls, RuntimeBenchmarkOptions options)
    {
        const int Batch = 100;
        var samples = calls.Select(_ => new List<double>(options.LatencyCalls)).ToArray();
        foreach (var call in calls)
        {
            for (var i = 0; i < 200; i++)
            {
                await call().ConfigureAwait(false);
            }
        }

        for (var done = 0; done < options.LatencyCalls; done += Batch)
        {
            for (var c = 0; c < calls.Length; c++)
            {
                for (var i = 0; i < Batch; i++)
                {
                    var start = Stopwatch.GetTimestamp();
                    await calls[c]().ConfigureAwait(false);
                    samples[c].Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
                }
            }
        }

        LatencyFigures Figures(List<double> s)
        {
            s.Sort();
            return new LatencyFigures(0, s[s.Count / 2], s[(int)(s.Count * 0.99)]);
        }

        return samples.Select(Figures).ToArray();
    }

    private static async Task<double> ThroughputAsync(Func<Task> call, RuntimeBenchmarkOptions options, CancellationToken cancellationToken)
    {
        var calls = 0L;
        var watch = Stopwatch.StartNew();
        var until = TimeSpan.FromSeconds(options.ThroughputSeconds);
        await Task.WhenAll(Enumerable.Range(0, options.Concurrency).Select(async _ =>
        {
            while (watch.Elapsed < until && !cancellationToken.IsCancellationRequested)
            {
                await call().ConfigureAwait(false);
                Interlocked.Increment(ref calls);
            }
        })).ConfigureAwait(false);
        return calls / watch.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// Bytes per second through each of <paramref name="sends"/>, measured in alternating batches (about
    /// 64 MiB each) so that all see the same machine; each rate is over all its batches.
    /// </summary>
    private static async Task<double[]> PayloadRatesAsync(Func<Task>[] sends, int bytes, int batches)
    {
        var perBatch = Math.Max(2, (64 << 20) / bytes);
        var times = new TimeSpan[sends.Length];
        for (var b = 0; b < batches; b++)
        {
            for (var s = 0; s < sends.Length; s++)
            {
                times[s] += await TimeAsync(sends[s], perBatch).ConfigureAwait(false);
            }
        }

        var total = (double)bytes * perBatch * batches;
        return times.Select(t => total / t.TotalSeconds).ToArray();
    }

    private static async Task<TimeSpan> TimeAsync(Func<Task> send, int repetitions)
    {
        var start = Stopwatch.GetTimestamp();
        for (var i = 0; i < repetitions; i++)
        {
            await send().ConfigureAwait(false);
        }

        return Stopwatch.GetElapsedTime(start);
    }

    /// <summary>The baseline: a length-prefixed echo over a plain loopback socket (the server answers with 4 bytes).</summary>
    private sealed class RawEcho : IAsyncDisposable
    {
        private readonly TcpListener _listener;
        private readonly TcpClient _client;
        private readonly NetworkStream _stream;
        private readonly byte[] _header = new byte[4];

        private RawEcho(TcpListener listener, TcpClient client)
        {
            _listener = listener;
            _client = client;
            _stream = client.GetStream();
        }

        public static async Task<RawEcho> StartAsync()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            _ = Task.Run(async () =>
            {
                using var server = await listener.AcceptTcpClientAsync().ConfigureAwait(false);
                server.NoDelay = true;
                var stream = server.GetStream();
                var buffer = new byte[1 << 20];
                var answer = new byte[4];
                try
                {
                    // As few syscalls as possible: read whatever arrived, answer each frame once it is complete.
                    var header = new byte[4];
                    var headerHave = 0;
                    var remaining = -1L;
                    while (true)
                    {
                        var read = await stream.ReadAsync(buffer).ConfigureAwait(false);
                        if (read == 0)
                        {
                            return;
                        }

                        for (var i = 0; i < read;)
                        {
                            if (remaining < 0)
                            {
                                var take = Math.Min(4 - headerHave, read - i);
                                buffer.AsSpan(i, take).CopyTo(header.AsSpan(headerHave));
                                headerHave += take;
                                i += take;
                                if (headerHave < 4)
                                {
                                    continue;
                                }

                                remaining = BinaryPrimitives.ReadInt32LittleEndian(header);
                                headerHave = 0;
                            }

                            var body = (int)Math.Min(remaining, read - i);
                            remaining -= body;
                            i += body;
                            if (remaining == 0)
                            {
                                await stream.WriteAsync(answer).ConfigureAwait(false);
                                remaining = -1;
                            }
                        }
                    }
                }
                catch (IOException)
                {
                }
            });
            var client = new TcpClient { NoDelay = true };
            await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port).ConfigureAwait(false);
            return new RawEcho(listener, client);
        }

        public Task RoundTripAsync(int size) => SendAsync(new byte[size]);

        public async Task SendAsync(byte[] payload)
        {
            // One write of header and payload (as a frame would go), then the 4-byte answer.
            var frame = payload.Length <= 4096 ? new byte[4 + payload.Length] : null;
            if (frame is not null)
            {
                BinaryPrimitives.WriteInt32LittleEndian(frame, payload.Length);
                payload.CopyTo(frame, 4);
                await _stream.WriteAsync(frame).ConfigureAwait(false);
            }
            else
            {
                BinaryPrimitives.WriteInt32LittleEndian(_header, payload.Length);
                await _stream.WriteAsync(_header).ConfigureAwait(false);
                await _stream.WriteAsync(payload).ConfigureAwait(false);
            }

            await _stream.ReadExactlyAsync(_header).ConfigureAwait(false);
        }

        public ValueTask DisposeAsync()
        {
            _client.Dispose();
            _listener.Stop();
            return ValueTask.CompletedTask;
        }
    }
}
