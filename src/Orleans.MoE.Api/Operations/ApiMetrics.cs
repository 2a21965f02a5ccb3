using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace Orleans.MoE.Api.Operations;

/// <summary>What the front end measured: requests by endpoint and status, tokens streamed, latencies as clients see them.</summary>
public sealed class ApiMetrics
{
    private static readonly double[] s_firstTokenBounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
    private static readonly double[] s_interTokenBounds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
    private static readonly double[] s_requestBounds = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

    private readonly ConcurrentDictionary<(string Endpoint, int Status), long> _requests = new();
    private readonly Histogram _timeToFirstToken = new("moe_api_time_to_first_token_seconds", "Time from a request's arrival to its first generated token.", s_firstTokenBounds);
    private readonly Histogram _interToken = new("moe_api_inter_token_latency_seconds", "Time between consecutive tokens of a choice.", s_interTokenBounds);
    private readonly Histogram _duration = new("moe_api_request_duration_seconds", "Time to answer a completion request in full.", s_requestBounds);
    private readonly Histogram _meshCalls = new("moe_api_mesh_call_seconds", "Latency of the front end's calls into the mesh (model lookups, status reads).", s_firstTokenBounds);
    private readonly Queue<long> _recentTokens = new();
    private long _tokens;
    private long _inFlight;
    private long _resubmissions;

    public long TokensStreamed => Interlocked.Read(ref _tokens);

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

    internal void RequestStarted() => Interlocked.Increment(ref _inFlight);

    internal void RequestEnded(string endpoint, int status, TimeSpan duration)
    {
        Interlocked.Decrement(ref _inFlight);
        _requests.AddOrUpdate((endpoint, status), 1, (_, n) => n + 1);
        _duration.Observe(duration);
    }

    internal void TokenStreamed(bool first, TimeSpan sincePrevious)
    {
        (first ? _timeToFirstToken : _interToken).Observe(sincePrevious);
        Interlocked.Increment(ref _tokens);
        var now = Stopwatch.GetTimestamp();
        lock (_recentTokens)
        {
            _recentTokens.Enqueue(now);
            Trim(now);
        }
    }

    internal void MeshCall(TimeSpan duration) => _meshCalls.Observe(duration);

    /// <summary>Adds <paramref name="client"/>'s resubmissions (sequences lost with their silo) when the returned scope ends.</summary>
    internal IDisposable CountResubmissions(Grains.Generation.MeshClient client) => new ResubmissionCount(this, client);

    internal void WriteTo(StringBuilder text)
    {
        Prometheus.Header(text, "moe_api_requests_total", "Requests answered, by endpoint and HTTP status.", "counter");
        foreach (var ((endpoint, status), count) in _requests.OrderBy(r => r.Key.Endpoint, StringComparer.Ordinal).ThenBy(r => r.Key.Status))
        {
            Prometheus.Sample(text, "moe_api_requests_total", count, ("endpoint", endpoint), ("status", status.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        Prometheus.Header(text, "moe_api_requests_in_flight", "Requests being answered now.", "gauge");
        Prometheus.Sample(text, "moe_api_requests_in_flight", Interlocked.Read(ref _inFlight));
        Prometheus.Header(text, "moe_api_resubmissions_total", "Sequences resubmitted after the silo running them died (the stream went on).", "counter");
        Prometheus.Sample(text, "moe_api_resubmissions_total", Interlocked.Read(ref _resubmissions));
        Prometheus.Header(text, "moe_api_tokens_total", "Tokens streamed to clients.", "counter");
        Prometheus.Sample(text, "moe_api_tokens_total", TokensStreamed);
        Prometheus.Header(text, "moe_api_tokens_per_second", "Tokens streamed per second over the last 10 seconds.", "gauge");
        Prometheus.Sample(text, "moe_api_tokens_per_second", TokensPerSecond);
        _timeToFirstToken.WriteTo(text);
        _interToken.WriteTo(text);
        _duration.WriteTo(text);
        _meshCalls.WriteTo(text);
    }

    private sealed class ResubmissionCount(ApiMetrics owner, Grains.Generation.MeshClient client) : IDisposable
    {
        public void Dispose() => Interlocked.Add(ref owner._resubmissions, client.Resubmissions);
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
