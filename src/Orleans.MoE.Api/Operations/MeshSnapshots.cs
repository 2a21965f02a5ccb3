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
    private Reading? _last;

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
            try
            {
                var snapshot = await MeshSnapshot.ReadAsync(grains).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
                metrics.MeshCall(Stopwatch.GetElapsedTime(started));
                _last = new Reading(snapshot, Stopwatch.GetTimestamp());
                return snapshot;
            }
            catch
            {
                _last = new Reading(null, Stopwatch.GetTimestamp());
                throw;
            }
        }
        finally
        {
            _reading.Release();
        }
    }

    /// <summary>
    /// The last reading, for metric callbacks (which cannot wait): whether the mesh could be read and its
    /// snapshot then (null before the first reading). A reading older than a second is renewed in the
    /// background for the next collection; a scrape of <c>/metrics</c> renews it first.
    /// </summary>
    public (bool Up, MeshSnapshot? Snapshot) Last()
    {
        var last = _last;
        if (last is null || Stopwatch.GetElapsedTime(last.Time) >= s_maxAge)
        {
            _ = RenewAsync();
        }

        return (last?.Snapshot is not null, last?.Snapshot);
    }

    /// <summary>Reads the mesh if the last reading is old; a failure is recorded as the last reading (the mesh is down).</summary>
    public async Task RenewAsync()
    {
        try
        {
            await ReadAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Recorded in _last: the metrics say the mesh could not be read.
        }
    }

    public void Dispose() => _reading.Dispose();

    private MeshSnapshot? Fresh() =>
        _last is { Snapshot: { } snapshot } last && Stopwatch.GetElapsedTime(last.Time) < s_maxAge ? snapshot : null;

    /// <summary>A snapshot (null: the mesh could not be read) and when it was taken.</summary>
    private sealed record Reading(MeshSnapshot? Snapshot, long Time);
}
