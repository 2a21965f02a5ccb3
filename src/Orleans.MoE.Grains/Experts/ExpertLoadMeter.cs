using Microsoft.Extensions.Options;

namespace Orleans.MoE.Grains.Experts;

/// <summary>
/// Tokens each expert activation of this silo has computed over a moving window (six buckets of a sixth
/// of the window each; the oldest is dropped as a new one starts).
/// </summary>
public sealed class ExpertLoadMeter(IOptions<MeshOptions> options, TimeProvider time)
{
    private const int Buckets = 6;
    private readonly Queue<(DateTimeOffset Start, Dictionary<ExpertKey, long> Tokens)> _buckets = new();
    private readonly object _lock = new();

    private TimeSpan BucketWidth => options.Value.Balancer.LoadWindow / Buckets;

    public void Record(ExpertKey key, long tokens)
    {
        lock (_lock)
        {
            var bucket = Current();
            bucket[key] = bucket.GetValueOrDefault(key) + tokens;
        }
    }

    /// <summary>Tokens per expert activation within the window.</summary>
    public Dictionary<ExpertKey, long> Snapshot()
    {
        lock (_lock)
        {
            Current();
            var total = new Dictionary<ExpertKey, long>();
            foreach (var (_, tokens) in _buckets)
            {
                foreach (var (key, count) in tokens)
                {
                    total[key] = total.GetValueOrDefault(key) + count;
                }
            }

            return total;
        }
    }

    private Dictionary<ExpertKey, long> Current()
    {
        var now = time.GetUtcNow();
        while (_buckets.Count > 0 && now - _buckets.Peek().Start >= BucketWidth * Buckets)
        {
            _buckets.Dequeue();
        }

        if (_buckets.Count == 0 || now - _buckets.Last().Start >= BucketWidth)
        {
            _buckets.Enqueue((now, []));
        }

        return _buckets.Last().Tokens;
    }
}
