using System.Diagnostics;
using Orleans.MoE.Grains.Status;

namespace Orleans.MoE.Api.Operations;

/// <summary>
/// The mesh's snapshot for the dashboard, metrics and readiness, read at most once per second however
/// many browsers and scrapers ask (it costs a call per silo and per model).
/// </summary>
internal sealed class MeshSnapshots(IGrainFactory grains, ApiMetrics metrics) : IDisposable
{
    private static readonly TimeSpan s_maxAge = TimeSpan.FromSeconds(1);
    private readonly SemaphoreSlim _reading = new(1, 1);
    private (MeshSnapshot Snapshot, long Time)? _last;

    public async Task<MeshSnapshot> ReadAsync()
    {
        if (Fresh() is { } cached)
        {
            return cached;
        }

        await _reading.WaitAsync().ConfigureAwait(false);
        try
        {
            if (Fresh() is { } read)
            {
                return read;
            }

            var started = Stopwatch.GetTimestamp();
            var snapshot = await MeshSnapshot.ReadAsync(grains).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            metrics.MeshCall(Stopwatch.GetElapsedTime(started));
            _last = (snapshot, Stopwatch.GetTimestamp());
            return snapshot;
        }
        finally
        {
            _reading.Release();
        }
    }

    public void Dispose() => _reading.Dispose();

    private MeshSnapshot? Fresh() =>
        _last is { } last && Stopwatch.GetElapsedTime(last.Time) < s_maxAge ? last.Snapshot : null;
}
