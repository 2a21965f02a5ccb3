namespace Orleans.MoE.Grains.Diagnostics;

/// <summary>Recent samples of one latency (microseconds): the last few thousand, for percentiles.</summary>
public sealed class LatencyRecorder
{
    private readonly double[] _samples = new double[4096];
    private readonly object _lock = new();
    private long _count;

    public long Count => Interlocked.Read(ref _count);

    public void Record(double microseconds)
    {
        lock (_lock)
        {
            _samples[_count % _samples.Length] = microseconds;
            _count++;
        }
    }

    /// <summary>The <paramref name="percentile"/> (0–100) of the recent samples, or NaN without any.</summary>
    public double Percentile(double percentile) => Percentile(Samples(), percentile);

    /// <summary>The recent samples, oldest first not guaranteed.</summary>
    public double[] Samples()
    {
        lock (_lock)
        {
            return _samples.AsSpan(0, (int)Math.Min(_count, _samples.Length)).ToArray();
        }
    }

    /// <summary>The <paramref name="percentile"/> (0–100) of <paramref name="samples"/> (nearest rank), or NaN when empty.</summary>
    public static double Percentile(IEnumerable<double> samples, double percentile)
    {
        var sorted = samples.Order().ToArray();
        if (sorted.Length == 0)
        {
            return double.NaN;
        }

        var rank = (int)Math.Ceiling(percentile / 100 * sorted.Length) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Length - 1)];
    }

    public void Clear()
    {
        lock (_lock)
        {
            _count = 0;
        }
    }
}

/// <summary>Something the mesh did or absorbed: an expert call sent again, experts skipped in degraded mode, a silo that came or went, experts moved or activated.</summary>
public sealed record MeshEvent(DateTimeOffset Time, string Description);

/// <summary>What this silo's part of the mesh has measured: dispatch overhead, retries, skipped experts, recent failovers.</summary>
public sealed class MeshMetrics(TimeProvider time)
{
    private readonly Queue<MeshEvent> _events = new();
    private long _expertBatches;
    private long _expertCallFailures;
    private long _skippedExperts;
    private long _tokensGenerated;

    /// <summary>Per layer and step: time from a gate sending its requests to having every result, minus the slowest destination's own compute.</summary>
    public LatencyRecorder DispatchOverhead { get; } = new();

    /// <summary>Time from a sequence's admission to its first token.</summary>
    public LatencyRecorder TimeToFirstToken { get; } = new();

    /// <summary>Time between consecutive tokens of a sequence.</summary>
    public LatencyRecorder InterTokenLatency { get; } = new();

    /// <summary>Expert batches this silo's gates sent to other silos (one per destination silo, layer and step).</summary>
    public long ExpertBatches => Interlocked.Read(ref _expertBatches);

    public long ExpertCallFailures => Interlocked.Read(ref _expertCallFailures);

    public long SkippedExperts => Interlocked.Read(ref _skippedExperts);

    public long TokensGenerated => Interlocked.Read(ref _tokensGenerated);

    /// <summary>The last 50 events, oldest first.</summary>
    public IReadOnlyList<MeshEvent> RecentEvents
    {
        get
        {
            lock (_events)
            {
                return _events.ToList();
            }
        }
    }

    public void ExpertBatchSent() => Interlocked.Increment(ref _expertBatches);

    public void ExpertCallFailed(string description)
    {
        Interlocked.Increment(ref _expertCallFailures);
        AddEvent(description);
    }

    public void ExpertsSkipped(int count, string description)
    {
        Interlocked.Add(ref _skippedExperts, count);
        AddEvent(description);
    }

    public void TokenGenerated() => Interlocked.Increment(ref _tokensGenerated);

    /// <summary>Records a placement or membership event (a silo left, experts moved or reactivated).</summary>
    public void Record(string description) => AddEvent(description);

    private void AddEvent(string description)
    {
        lock (_events)
        {
            _events.Enqueue(new MeshEvent(time.GetUtcNow(), description));
            while (_events.Count > 50)
            {
                _events.Dequeue();
            }
        }
    }
}
