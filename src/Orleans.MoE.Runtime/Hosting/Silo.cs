using Microsoft.Extensions.Logging;
using Orleans.MoE.Runtime.Membership;

namespace Orleans.MoE.Runtime.Hosting;

/// <summary>A running silo: its address and grain factory, graceful stop and (for tests) crash.</summary>
public sealed partial class Silo : IAsyncDisposable
{
    private readonly SiloRuntime _runtime;
    private readonly ILogger _logger;
    private static readonly TimeSpan QuietBeforeClose = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan MaxWaitForQuiet = TimeSpan.FromSeconds(5);
    private readonly CancellationTokenSource _stopping = new();
    private int _state;

    internal Silo(SiloRuntime runtime, ILogger<Silo> logger)
    {
        _runtime = runtime;
        _logger = logger;
    }

    /// <summary>The silo's service container (grains and lifecycle participants are built from it).</summary>
    public IServiceProvider Services => _runtime.Services;

    public SiloAddress Address => _runtime.SiloAddress;

    public IGrainFactory GrainFactory => _runtime.GrainFactory;

    /// <summary>Whether the silo is taking requests.</summary>
    public bool IsRunning => _runtime.IsAccepting;

    /// <summary>Activations on this silo now (stateless workers included).</summary>
    public int ActivationCount => _runtime.Catalog.Count;

    /// <summary>Grains with an activation on this silo.</summary>
    public IReadOnlyList<GrainId> ActiveGrains => _runtime.Catalog.Activations.Where(a => a.State == ActivationState.Valid).Select(a => a.GrainId).ToList();

    /// <summary>Publishes this silo's capabilities and capacity to the cluster's placement.</summary>
    public Placement.ISiloMetadataPublisher Metadata => _runtime.Membership;

    /// <summary>The active silos as this silo's placement sees them: published metadata and load.</summary>
    public IReadOnlyList<Placement.SiloInfo> ClusterSilos => _runtime.Membership.LiveSilos();

    /// <summary>The silos this silo currently sees as active.</summary>
    public IReadOnlyCollection<SiloAddress> ActiveSilos => _runtime.Membership.ActiveSilos;

    internal SiloRuntime Runtime => _runtime;

    /// <summary>Moves the activation of <paramref name="grain"/> (wherever it is) to <paramref name="target"/>.</summary>
    public async Task MigrateAsync(GrainId grain, SiloAddress target)
    {
        var address = await _runtime.Directory.LookupAsync(grain).ConfigureAwait(false)
            ?? throw new KeyNotFoundException($"{grain} has no activation");
        var control = address.Silo == Address ? new SiloControl(_runtime) : _runtime.GrainFactory.GetSystemTarget<ISiloControl>(address.Silo);
        await control.MigrateAsync(grain, target).ConfigureAwait(false);
        _runtime.Directory.Invalidate(grain);
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
        {
            return;
        }

        _runtime.Start();
        await _runtime.Membership.JoinAsync(cancellationToken).ConfigureAwait(false);
        _ = CollectLoopAsync();
        foreach (var participant in Participants)
        {
            await participant.OnSiloStartedAsync(_stopping.Token).ConfigureAwait(false);
        }

        LogStarted(_logger, Address);
    }

    /// <summary>
    /// Graceful shutdown: marks itself shutting down (no new placements here), migrates grains that can
    /// move to other silos and deactivates the rest, then leaves the cluster.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.CompareExchange(ref _state, 2, 1) != 1)
        {
            return;
        }

        if (!_runtime.IsHalted)
        {
            await _runtime.Membership.LeaveAsync(SiloStatus.ShuttingDown, cancellationToken).ConfigureAwait(false);
            await _runtime.Membership.RefreshAsync().ConfigureAwait(false);
            foreach (var participant in Participants)
            {
                try
                {
                    await participant.OnSiloStoppingAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogParticipantFailed(_logger, participant.GetType().Name, e);
                }
            }
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_runtime.IsHalted)
        {
            // Declared dead while running: nothing to hand over, nobody to tell.
            await _runtime.DisposeAsync().ConfigureAwait(false);
            return;
        }

        // From here new requests are refused with "rejected", which callers answer by routing again.
        _runtime.StopAccepting();
        var others = _runtime.Membership.LiveSilos().Where(s => s.Address != Address).ToList();
        await _runtime.Catalog.DeactivateAllAsync(DeactivationReason.ShuttingDown,
            activation => activation.Instance is IGrainMigrationParticipant && others.Count > 0
                ? others[(int)(activation.GrainId.StableHash() % (uint)others.Count)].Address
                : null).ConfigureAwait(false);
        await _runtime.Membership.LeaveAsync(SiloStatus.Dead, cancellationToken).ConfigureAwait(false);

        // Keep the connections open until callers have stopped sending (they learn of the departure from
        // the table and gossip), refusing what still comes so it is routed elsewhere; then close.
        var started = _runtime.Time.GetUtcNow();
        while (_runtime.Time.GetUtcNow() - _runtime.LastRequestReceived < QuietBeforeClose && _runtime.Time.GetUtcNow() - started < MaxWaitForQuiet)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(50), _runtime.Time, CancellationToken.None).ConfigureAwait(false);
        }
        await _runtime.DisposeAsync().ConfigureAwait(false);
        LogStopped(_logger, Address);
    }

    /// <summary>Crash: stops at once, telling nobody (connections drop, timers stop, activations vanish).</summary>
    public void Kill()
    {
        Interlocked.Exchange(ref _state, 3);
        _stopping.Cancel();
        _runtime.Membership.Abort();
        _runtime.Halt();
    }

    public async ValueTask DisposeAsync()
    {
        if (Volatile.Read(ref _state) == 1)
        {
            await StopAsync().ConfigureAwait(false);
        }
    }

    private IEnumerable<ISiloLifecycleParticipant> Participants =>
        (IEnumerable<ISiloLifecycleParticipant>?)_runtime.Services.GetService(typeof(IEnumerable<ISiloLifecycleParticipant>)) ?? [];

    private async Task CollectLoopAsync()
    {
        using var timer = new PeriodicTimer(_runtime.CollectionOptions.CollectionQuantum, _runtime.Time);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                await _runtime.Catalog.CollectIdleAsync().ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Silo {Silo} started")]
    private static partial void LogStarted(ILogger logger, SiloAddress silo);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Participant} failed while the silo was stopping")]
    private static partial void LogParticipantFailed(ILogger logger, string participant, Exception error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Silo {Silo} stopped")]
    private static partial void LogStopped(ILogger logger, SiloAddress silo);
}
