using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Orleans.MoE.Runtime.Configuration;
using Orleans.MoE.Runtime.Placement;

namespace Orleans.MoE.Runtime.Membership;

/// <summary>
/// The membership protocol, in the manner of Orleans: a silo joins by writing its row, keeps a view
/// of the table (refreshed periodically and on gossip), probes its successors on the ring, and when
/// one misses enough probes and an indirect probe through another silo also fails, votes it dead in
/// the table; enough votes declare it dead. Call failures trigger a probe at once. A silo that finds
/// itself declared dead halts, so it never serves stale activations.
/// </summary>
internal sealed partial class MembershipService : ISiloMetadataPublisher, IDisposable
{
    private static readonly TimeSpan DeadSiloGrace = TimeSpan.FromSeconds(1);
    private readonly SiloRuntime _runtime;
    private readonly IMembershipTable _table;
    private readonly ClusterMembershipOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<SiloAddress, int> _missed = new();
    private readonly ConcurrentDictionary<SiloAddress, int> _activations = new();
    private readonly SemaphoreSlim _refreshing = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private volatile Dictionary<SiloAddress, MembershipEntry> _view = [];
    private HashSet<SiloAddress> _live = [];
    private HashSet<SiloAddress> _dead = [];
    private int _disposed;
    private ImmutableDictionary<string, string> _metadata;

    public MembershipService(SiloRuntime runtime, IMembershipTable table, ClusterMembershipOptions options, ILogger logger)
    {
        _runtime = runtime;
        _table = table;
        _options = options;
        _logger = logger;
        _metadata = runtime.SiloOptions.Metadata.ToImmutableDictionary(StringComparer.Ordinal);
    }

    /// <summary>The metadata this silo publishes, with its activation count.</summary>
    public IReadOnlyDictionary<string, string> Current =>
        _metadata.SetItem(SiloMetadataKeys.Activations, _runtime.Catalog.Count.ToString(CultureInfo.InvariantCulture));

    public async Task PublishAsync(IReadOnlyDictionary<string, string?> changes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ImmutableInterlocked.Update(ref _metadata, metadata =>
        {
            foreach (var (key, value) in changes)
            {
                metadata = value is null ? metadata.Remove(key) : metadata.SetItem(key, value);
            }

            return metadata;
        });
        await HeartbeatAsync(cancellationToken).ConfigureAwait(false);
        Gossip();
    }

    private Task HeartbeatAsync(CancellationToken cancellationToken) =>
        _table.UpdateIAmAliveAsync(_runtime.SiloAddress, _runtime.Time.GetUtcNow(), Current, cancellationToken);

    /// <summary>Raised after the view changes (live silos, dead silos).</summary>
    public event Action<IReadOnlyCollection<SiloAddress>, IReadOnlyCollection<SiloAddress>>? Changed;

    public bool IsDead(SiloAddress silo)
    {
        var view = _view;
        if (view.TryGetValue(silo, out var entry))
        {
            return entry.Status == SiloStatus.Dead;
        }

        // A later generation on the same endpoint supersedes this one.
        return view.Keys.Any(s => s.Host == silo.Host && s.Port == silo.Port && s.Generation > silo.Generation);
    }

    /// <summary>
    /// The active silos with their published metadata and load: this silo's own now; a probed silo's
    /// activation count from its last probe answer, any other's from its last heartbeat.
    /// </summary>
    public IReadOnlyList<SiloInfo> LiveSilos() => _view.Values
        .Where(e => e.Status == SiloStatus.Active)
        .Select(e => e.Silo == _runtime.SiloAddress
            ? new SiloInfo(e.Silo, Current, _runtime.Catalog.Count)
            : new SiloInfo(e.Silo, e.Metadata, _activations.TryGetValue(e.Silo, out var probed) ? probed : PublishedActivations(e.Metadata)))
        .ToList();

    private static int PublishedActivations(IReadOnlyDictionary<string, string> metadata) =>
        metadata.TryGetValue(SiloMetadataKeys.Activations, out var text) && int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var count) ? count : 0;

    public IReadOnlyCollection<SiloAddress> ActiveSilos => _view.Values.Where(e => e.Status == SiloStatus.Active).Select(e => e.Silo).ToList();

    /// <summary>Joins the cluster: a row as Joining, then Active, then the background loops.</summary>
    public async Task JoinAsync(CancellationToken cancellationToken)
    {
        var now = _runtime.Time.GetUtcNow();
        var entry = new MembershipEntry(_runtime.SiloAddress, SiloStatus.Joining, now, now, [], Current);
        await WriteAsync(_ => entry, insert: true, cancellationToken).ConfigureAwait(false);
        await WriteAsync(current => current! with { Status = SiloStatus.Active }, insert: false, cancellationToken).ConfigureAwait(false);
        await RefreshAsync().ConfigureAwait(false);
        Gossip();
        _ = LoopAsync(_options.TableRefreshInterval, RefreshAsync);
        _ = LoopAsync(_options.ProbeInterval, ProbeSuccessorsAsync);
        _ = LoopAsync(_options.IAmAliveInterval, () => HeartbeatAsync(_stopping.Token));
    }

    /// <summary>Graceful leave: ShuttingDown while grains move off, then Dead.</summary>
    public async Task LeaveAsync(SiloStatus status, CancellationToken cancellationToken)
    {
        await WriteAsync(current => current is null ? null : current with { Status = status }, insert: false, cancellationToken).ConfigureAwait(false);
        if (status == SiloStatus.Dead)
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
        }

        Gossip();
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stopping.Cancel();
        _stopping.Dispose();
        _refreshing.Dispose();
    }

    /// <summary>Stops the loops without telling anyone (a crash).</summary>
    public void Abort()
    {
        if (Volatile.Read(ref _disposed) == 0)
        {
            _stopping.Cancel();
        }
    }

    /// <summary>A call to <paramref name="silo"/> failed: probe it now instead of waiting for the schedule.</summary>
    public void ReportCallFailure(SiloAddress silo)
    {
        if (silo == _runtime.SiloAddress || IsDead(silo) || _stopping.IsCancellationRequested || !MayJudge)
        {
            return;
        }

        _missed.AddOrUpdate(silo, Math.Max(0, _options.MissedProbesLimit - 1), (_, n) => Math.Max(n, _options.MissedProbesLimit - 1));
        _ = ProbeAsync(silo);
    }

    public async Task RefreshAsync()
    {
        if (!await _refreshing.WaitAsync(0).ConfigureAwait(false))
        {
            return;
        }

        try
        {
            var snapshot = await _table.ReadAllAsync(_stopping.Token).ConfigureAwait(false);
            var view = snapshot.Entries.ToDictionary(e => e.Entry.Silo, e => e.Entry);
            _view = view;
            if (view.TryGetValue(_runtime.SiloAddress, out var self) && self.Status == SiloStatus.Dead && _runtime.IsAccepting)
            {
                LogDeclaredDead(_logger, _runtime.SiloAddress);
                Abort();
                _runtime.Halt();
                return;
            }

            var live = view.Values.Where(e => e.Status is SiloStatus.Active or SiloStatus.ShuttingDown).Select(e => e.Silo).ToHashSet();
            var dead = view.Values.Where(e => e.Status == SiloStatus.Dead).Select(e => e.Silo).ToHashSet();
            var directoryLive = view.Values.Where(e => e.Status == SiloStatus.Active).Select(e => e.Silo).ToHashSet();
            if (!live.SetEquals(_live) || !dead.SetEquals(_dead))
            {
                var newlyDead = dead.Except(_dead).ToList();
                _live = live;
                _dead = dead;
                foreach (var silo in newlyDead)
                {
                    _ = DisconnectAsync(silo);
                    _missed.TryRemove(silo, out _);
                }

                _runtime.Directory.OnClusterChanged(directoryLive.Count == 0 ? [_runtime.SiloAddress] : directoryLive, dead);
                Changed?.Invoke(live, dead);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e)
        {
            LogRefreshFailed(_logger, e);
        }
        finally
        {
            _refreshing.Release();
        }
    }

    /// <summary>
    /// Drops a dead silo: after a moment (answers it sent before leaving may still be on the wire), its
    /// connection closes and calls still waiting on it fail.
    /// </summary>
    private async Task DisconnectAsync(SiloAddress silo)
    {
        await Task.Delay(DeadSiloGrace, _runtime.Time).ConfigureAwait(false);
        _runtime.MessageCenter.Disconnect(silo);
        _runtime.FailCallsTo(silo, "declared dead");
    }

    /// <summary>Only an active silo probes and votes: one leaving or declared dead has no say about others.</summary>
    private bool MayJudge => _view.TryGetValue(_runtime.SiloAddress, out var self) && self.Status == SiloStatus.Active && _runtime.IsAccepting;

    private async Task ProbeSuccessorsAsync()
    {
        if (!MayJudge)
        {
            return;
        }

        var active = _view.Values.Where(e => e.Status == SiloStatus.Active).Select(e => e.Silo).OrderBy(s => s.StableHash()).ToList();
        var index = active.IndexOf(_runtime.SiloAddress);
        if (index < 0 || active.Count < 2)
        {
            return;
        }

        var successors = Enumerable.Range(1, Math.Min(_options.ProbedSilos, active.Count - 1)).Select(i => active[(index + i) % active.Count]).ToList();
        foreach (var silo in _activations.Keys.Where(s => !successors.Contains(s)))
        {
            // No longer probed: placement falls back to the load it publishes with its heartbeats.
            _activations.TryRemove(silo, out _);
        }

        await Task.WhenAll(successors.Select(ProbeAsync)).ConfigureAwait(false);
    }

    private async Task ProbeAsync(SiloAddress silo)
    {
        if (await PingAsync(_runtime.GrainFactory.GetSystemTarget<ISiloControl>(silo), silo).ConfigureAwait(false))
        {
            _missed.TryRemove(silo, out _);
            return;
        }

        if (!MayJudge)
        {
            // This silo learned meanwhile that it is leaving or was declared dead: its failed probe is no evidence.
            return;
        }

        var missed = _missed.AddOrUpdate(silo, 1, (_, n) => n + 1);
        LogMissedProbe(_logger, silo, missed);
        if (missed < _options.MissedProbesLimit || IsDead(silo))
        {
            return;
        }

        // Before voting, ask another silo: maybe only our path to it is broken.
        var intermediary = _view.Values.Where(e => e.Status == SiloStatus.Active && e.Silo != silo && e.Silo != _runtime.SiloAddress)
            .Select(e => e.Silo).OrderBy(_ => Random.Shared.Next()).FirstOrDefault();
        if (intermediary is not null)
        {
            try
            {
                using var timeout = new CancellationTokenSource(_options.ProbeTimeout * 2, _runtime.Time);
                if (await _runtime.GrainFactory.GetSystemTarget<ISiloControl>(intermediary).ProbeAsync(silo, timeout.Token).ConfigureAwait(false))
                {
                    LogIndirectProbeSucceeded(_logger, silo, intermediary);
                    return;
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // The intermediary could not answer either; vote on our own evidence.
            }
        }

        await VoteDeadAsync(silo).ConfigureAwait(false);
    }

    private async Task<bool> PingAsync(ISiloControl control, SiloAddress silo)
    {
        try
        {
            using var timeout = new CancellationTokenSource(_options.ProbeTimeout, _runtime.Time);
            var statistics = await control.PingAsync(timeout.Token).ConfigureAwait(false);
            _activations[silo] = statistics.Activations;
            return true;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return false;
        }
    }

    private async Task VoteDeadAsync(SiloAddress silo)
    {
        if (!MayJudge)
        {
            return;
        }

        var declared = false;
        await WriteAsync(current =>
        {
            if (current is null || current.Status == SiloStatus.Dead)
            {
                return null;
            }

            var now = _runtime.Time.GetUtcNow();
            var active = _view.Values.Where(e => e.Status == SiloStatus.Active).Select(e => e.Silo).ToHashSet();
            var votes = current.Suspicions.Where(v => v.Voter != _runtime.SiloAddress && active.Contains(v.Voter) && now - v.Time < _options.VoteExpiration)
                .Append(new SuspicionVote(_runtime.SiloAddress, now)).ToList();
            var voters = _view.Values.Count(e => e.Status == SiloStatus.Active && e.Silo != silo);
            declared = votes.Count >= Math.Max(1, Math.Min(_options.VotesForDeath, voters));
            return current with { Suspicions = votes, Status = declared ? SiloStatus.Dead : current.Status };
        }, insert: false, _stopping.Token, silo).ConfigureAwait(false);

        if (declared)
        {
            LogDeclaredOtherDead(_logger, silo);
        }

        await RefreshAsync().ConfigureAwait(false);
        Gossip();
    }

    /// <summary>Read-modify-write of one row with optimistic concurrency, retried on conflicts.</summary>
    private async Task WriteAsync(Func<MembershipEntry?, MembershipEntry?> change, bool insert, CancellationToken cancellationToken, SiloAddress? row = null)
    {
        row ??= _runtime.SiloAddress;
        for (var attempt = 0; attempt < 20; attempt++)
        {
            var snapshot = await _table.ReadAllAsync(cancellationToken).ConfigureAwait(false);
            var current = snapshot.Entries.FirstOrDefault(e => e.Entry.Silo == row);
            var updated = change(current.Entry);
            if (updated is null)
            {
                return;
            }

            var written = insert
                ? await _table.InsertRowAsync(updated, snapshot.Version, cancellationToken).ConfigureAwait(false)
                : current.Entry is not null && await _table.UpdateRowAsync(updated, current.ETag, snapshot.Version, cancellationToken).ConfigureAwait(false);
            if (written)
            {
                return;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(5, 50)), cancellationToken).ConfigureAwait(false);
        }

        throw new InvalidOperationException($"could not update the membership row of {row} after 20 attempts");
    }

    private void Gossip()
    {
        foreach (var silo in _view.Keys.Where(s => s != _runtime.SiloAddress && !IsDead(s)))
        {
            _ = NotifyAsync(silo);
        }
    }

    private async Task NotifyAsync(SiloAddress silo)
    {
        try
        {
            await _runtime.GrainFactory.GetSystemTarget<ISiloControl>(silo).MembershipChangedAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
        }
    }

    private async Task LoopAsync(TimeSpan interval, Func<Task> work)
    {
        using var timer = new PeriodicTimer(interval, _runtime.Time);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                try
                {
                    await work().ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogLoopFailed(_logger, e);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "This silo ({Silo}) was declared dead by the cluster; halting")]
    private static partial void LogDeclaredDead(ILogger logger, SiloAddress silo);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Declared silo {Silo} dead")]
    private static partial void LogDeclaredOtherDead(ILogger logger, SiloAddress silo);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Silo {Silo} missed {Count} probes")]
    private static partial void LogMissedProbe(ILogger logger, SiloAddress silo, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "Silo {Silo} answered an indirect probe through {Intermediary}; no vote")]
    private static partial void LogIndirectProbeSucceeded(ILogger logger, SiloAddress silo, SiloAddress intermediary);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reading the membership table failed")]
    private static partial void LogRefreshFailed(ILogger logger, Exception error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A membership loop iteration failed")]
    private static partial void LogLoopFailed(ILogger logger, Exception error);
}
