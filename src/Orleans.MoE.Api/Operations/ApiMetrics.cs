using System.Diagnostics;
using System.Diagnostics.Metrics;
using Orleans.MoE.Grains.Diagnostics;

namespace Orleans.MoE.Api.Operations;

/// <summary>
/// What the front end measured, as instruments of the <see cref="MeshTelemetry.Name"/> meter: tokens
/// streamed, latencies as clients see them, resubmissions. Requests by route and status, their duration
/// and the requests in flight are ASP.NET Core's own (<c>http.server.request.duration</c>,
/// <c>http.server.active_requests</c>).
/// </summary>
public sealed class ApiMetrics
{
    private static readonly double[] s_firstTokenBounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
    private static readonly double[] s_interTokenBounds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

    private readonly Histogram<double> _timeToFirstToken;
    private readonly Histogram<double> _interToken;
    private readonly Histogram<double> _meshCalls;
    private readonly Counter<long> _tokens;
    private readonly Counter<long> _resubmissions;
    private readonly Queue<long> _recentTokens = new();

    public ApiMetrics(IMeterFactory meters)
    {
        ArgumentNullException.ThrowIfNull(meters);
        var meter = meters.Create(MeshTelemetry.Name);
        _timeToFirstToken = meter.CreateHistogram<double>("moe.api.time_to_first_token", "s", "Time from a request's arrival to its first generated token.",
            advice: new() { HistogramBucketBoundaries = s_firstTokenBounds });
        _interToken = meter.CreateHistogram<double>("moe.api.inter_token_latency", "s", "Time between consecutive tokens of a choice.",
            advice: new() { HistogramBucketBoundaries = s_interTokenBounds });
        _meshCalls = meter.CreateHistogram<double>("moe.api.mesh_call", "s", "Latency of the front end's calls into the mesh (model lookups, status reads).",
            advice: new() { HistogramBucketBoundaries = s_firstTokenBounds });
        _tokens = meter.CreateCounter<long>("moe.api.tokens", "{token}", "Tokens streamed to clients.");
        _resubmissions = meter.CreateCounter<long>("moe.api.resubmissions", "{sequence}", "Sequences resubmitted after the silo running them died (the stream went on).");
        meter.CreateObservableGauge("moe.api.tokens_per_second", () => TokensPerSecond, "{token}/s", "Tokens streamed per second over the last 10 seconds.");
    }

    /// <summary>Tokens streamed per second over the last 10 seconds.</summary>
    public double TokensPerSecond
    {
        get
        {
            lock (_recentTokens)
            {
                Trim(Stopwatch.GetTimestamp());
                return _recentTokens.Count / 10.0;
            }
        }
    }

    internal void TokenStreamed(bool first, TimeSpan sincePrevious)
    {
        (first ? _timeToFirstToken : _interToken).Record(sincePrevious.TotalSeconds);
        _tokens.Add(1);
        var now = Stopwatch.GetTimestamp();
        lock (_recentTokens)
        {
            _recentTokens.Enqueue(now);
            Trim(now);
        }
    }

    internal void MeshCall(TimeSpan duration) => _meshCalls.Record(duration.TotalSeconds);

    /// <summary>Adds <paramref name="client"/>'s resubmissions (sequences lost with their silo) when the returned scope ends.</summary>
    internal IDisposable CountResubmissions(Grains.Generation.MeshClient client) => new ResubmissionCount(this, client);

    private sealed class ResubmissionCount(ApiMetrics owner, Grains.Generation.MeshClient client) : IDisposable
    {
        public void Dispose() => owner._resubmissions.Add(client.Resubmissions);
    }

    private void Trim(long now)
    {
        var horizon = now - (10 * Stopwatch.Frequency);
        while (_recentTokens.TryPeek(out var oldest) && oldest < horizon)
        {
            _recentTokens.Dequeue();
        }
    }
}
