using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.MoE.Runtime.Messaging;
using Orleans.MoE.Runtime.Storage;

namespace Orleans.MoE.Runtime;

/// <summary>
/// The activations on this silo: creates one on the first request (registering it in the directory so
/// the grain has at most one activation in the cluster), runs the lifecycle hooks on the activation's
/// scheduler, deactivates on request, idleness, migration or shutdown, and keeps stateless workers.
/// </summary>
internal sealed partial class Catalog(SiloRuntime runtime, IServiceProvider services, ILogger<Catalog> logger)
{
    private readonly ConcurrentDictionary<GrainId, ActivationData> _activations = new();
    private readonly ConcurrentDictionary<GrainId, List<ActivationData>> _workers = new();
    private readonly ConcurrentDictionary<Type, ObjectFactory> _factories = new();
    private long _nextActivation;

    public int Count => _activations.Count + _workers.Values.Sum(w => w.Count);

    public IEnumerable<ActivationData> Activations => _activations.Values;

    public bool TryGet(GrainId id, out ActivationData activation) => _activations.TryGetValue(id, out activation!);

    /// <summary>Delivers a request to the local activation of its grain, creating it when there is none.</summary>
    public void Deliver(Message message, IReadOnlyDictionary<string, byte[]>? rehydration = null)
    {
        GrainClassInfo grainClass;
        try
        {
            grainClass = GrainTypeRegistry.Class(message.Target.Type);
        }
        catch (InvalidOperationException e)
        {
            runtime.Dispatcher.Fail(message, e);
            return;
        }

        if (grainClass.StatelessWorker is { } worker)
        {
            PickWorker(message.Target, grainClass, worker.MaxLocalWorkers).Enqueue(message);
            return;
        }

        for (var attempt = 0; attempt < 100; attempt++)
        {
            if (_activations.TryGetValue(message.Target, out var existing))
            {
                if (existing.Enqueue(message))
                {
                    return;
                }

                // Deactivating: wait for it to leave, then make a new one.
                Thread.Yield();
                continue;
            }

            var created = new ActivationData(runtime, message.Target, grainClass, NewActivationId()) { RehydrationState = rehydration };
            if (!_activations.TryAdd(message.Target, created))
            {
                continue;
            }

            created.Enqueue(message);
            _ = ActivateAsync(created, register: true);
            return;
        }

        runtime.Dispatcher.Reroute(message);
    }

    /// <summary>Activates a grain migrated here with its dehydrated state, taking over the directory entry of <paramref name="previous"/>.</summary>
    public async Task AcceptMigrationAsync(GrainId grain, IReadOnlyDictionary<string, byte[]> state, ActivationAddress previous)
    {
        var grainClass = GrainTypeRegistry.Class(grain.Type);
        var activation = new ActivationData(runtime, grain, grainClass, NewActivationId()) { RehydrationState = state };
        if (!_activations.TryAdd(grain, activation))
        {
            throw new InvalidOperationException($"{grain} is already active on {runtime.SiloAddress}");
        }

        await ActivateAsync(activation, register: true, replacing: previous).ConfigureAwait(false);
    }

    /// <summary>Moves a local activation to <paramref name="target"/>, handing its state over.</summary>
    public Task MigrateAsync(GrainId grain, SiloAddress target)
    {
        if (!_activations.TryGetValue(grain, out var activation))
        {
            throw new KeyNotFoundException($"{grain} is not active on {runtime.SiloAddress}");
        }

        activation.MigrationTarget = target;
        return DeactivateAsync(activation, DeactivationReason.Migrating);
    }

    /// <summary>Deactivates one grain's activation.</summary>
    public async Task DeactivateAsync(ActivationData activation, DeactivationReason reason)
    {
        if (activation.State is ActivationState.Deactivating or ActivationState.Invalid)
        {
            return;
        }

        var waiting = activation.MarkDeactivating();
        await activation.WaitForIdleAsync(runtime.CollectionOptions.DeactivationTimeout).ConfigureAwait(false);
        Dictionary<string, byte[]>? dehydrated = null;
        if (activation.Instance is Grain grain)
        {
            try
            {
                using var timeout = new CancellationTokenSource(runtime.CollectionOptions.DeactivationTimeout);
                await activation.RunOnScheduler(async () =>
                {
                    RuntimeContext.CurrentActivation = activation;
                    if (reason == DeactivationReason.Migrating && grain is IGrainMigrationParticipant participant)
                    {
                        dehydrated = [];
                        participant.OnDehydrate(dehydrated);
                    }

                    await grain.OnDeactivateAsync(reason, timeout.Token).ConfigureAwait(false);
                }).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                LogDeactivationFailed(logger, activation.GrainId, e);
            }
        }

        activation.MarkInvalid();
        Remove(activation);
        var migrated = reason == DeactivationReason.Migrating && activation.MigrationTarget is { } target
            && await runtime.MigrateToAsync(activation.GrainId, target, dehydrated ?? [], activation.Address).ConfigureAwait(false);
        if (!migrated && activation.Class.StatelessWorker is null && reason != DeactivationReason.SiloDeclaredDead)
        {
            await runtime.Directory.UnregisterAsync(activation.Address).ConfigureAwait(false);
        }

        LogDeactivated(logger, activation.GrainId, reason);

        foreach (var message in waiting)
        {
            runtime.Dispatcher.Reroute(message);
        }
    }

    /// <summary>Deactivates every activation idle longer than its collection age.</summary>
    public async Task CollectIdleAsync()
    {
        var now = runtime.Time.GetUtcNow();
        var idle = _activations.Values.Concat(_workers.Values.SelectMany(w => { lock (w) { return w.ToList(); } }))
            .Where(a => !a.Class.KeepAlive && a.State == ActivationState.Valid && a.IsIdle && !a.CollectionDelayed
                && now - a.LastActive >= (a.Class.CollectionAge ?? runtime.CollectionOptions.CollectionAge))
            .ToList();
        foreach (var activation in idle)
        {
            await DeactivateAsync(activation, DeactivationReason.Idle).ConfigureAwait(false);
        }
    }

    /// <summary>Deactivates everything (migrating grains that can move when <paramref name="migrateTo"/> picks a silo).</summary>
    public async Task DeactivateAllAsync(DeactivationReason reason, Func<ActivationData, SiloAddress?>? migrateTo = null)
    {
        var all = _activations.Values.Concat(_workers.Values.SelectMany(w => { lock (w) { return w.ToList(); } })).ToList();
        await Task.WhenAll(all.Select(a =>
        {
            if (migrateTo?.Invoke(a) is { } target)
            {
                a.MigrationTarget = target;
                return DeactivateAsync(a, DeactivationReason.Migrating);
            }

            return DeactivateAsync(a, reason);
        })).ConfigureAwait(false);
    }

    /// <summary>Drops every activation at once without running hooks (the silo was declared dead).</summary>
    public void DropAll()
    {
        foreach (var activation in _activations.Values)
        {
            activation.MarkDeactivating();
            activation.MarkInvalid();
        }

        _activations.Clear();
        _workers.Clear();
    }

    private async Task ActivateAsync(ActivationData activation, bool register, ActivationAddress? replacing = null)
    {
        if (register && activation.Class.StatelessWorker is null)
        {
            ActivationAddress winner;
            try
            {
                winner = await runtime.Directory.RegisterAsync(activation.Address, replacing).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                FailActivation(activation, e);
                return;
            }

            if (winner != activation.Address)
            {
                // Another silo won the race: forward everything queued here to the winner.
                var waiting = activation.MarkDeactivating();
                activation.MarkInvalid();
                Remove(activation);
                runtime.Directory.Cache(winner);
                foreach (var message in waiting)
                {
                    runtime.Dispatcher.Forward(message, winner.Silo);
                }

                return;
            }
        }

        try
        {
            await activation.RunOnScheduler(async () =>
            {
                RuntimeContext.CurrentActivation = activation;
                var instance = CreateInstance(activation);
                activation.Instance = instance;
                if (instance is Grain grain)
                {
                    grain.Attach(activation);
                    if (activation.RehydrationState is { } state && grain is IGrainMigrationParticipant participant)
                    {
                        participant.OnRehydrate(state);
                    }

                    await PersistentStateBinder.ReadAllAsync(activation).ConfigureAwait(false);
                    await grain.OnActivateAsync(CancellationToken.None).ConfigureAwait(false);
                }
            }).ConfigureAwait(false);
            activation.RehydrationState = null;
            activation.MarkValid();
        }
        catch (Exception e)
        {
            LogActivationFailed(logger, activation.GrainId, e);
            FailActivation(activation, e);
            if (register && activation.Class.StatelessWorker is null)
            {
                await runtime.Directory.UnregisterAsync(activation.Address).ConfigureAwait(false);
            }
        }
    }

    private void FailActivation(ActivationData activation, Exception error)
    {
        var waiting = activation.MarkDeactivating();
        activation.MarkInvalid();
        Remove(activation);
        foreach (var message in waiting)
        {
            runtime.Dispatcher.Fail(message, new ActivationFailedException(activation.GrainId, error));
        }
    }

    private object CreateInstance(ActivationData activation)
    {
        var factory = _factories.GetOrAdd(activation.Class.Type, type =>
            ActivatorUtilities.CreateFactory(type, PersistentStateBinder.ExtraArgumentTypes(type)));
        var extra = PersistentStateBinder.CreateArguments(activation, services);
        return factory(services, extra);
    }

    private ActivationData PickWorker(GrainId id, GrainClassInfo grainClass, int max)
    {
        var workers = _workers.GetOrAdd(id, _ => []);
        lock (workers)
        {
            workers.RemoveAll(w => w.State is ActivationState.Deactivating or ActivationState.Invalid);
            var idle = workers.FirstOrDefault(w => w.IsIdle);
            if (idle is not null)
            {
                return idle;
            }

            if (workers.Count < max)
            {
                var created = new ActivationData(runtime, id, grainClass, NewActivationId());
                workers.Add(created);
                _ = ActivateAsync(created, register: false);
                return created;
            }

            return workers.MinBy(w => w.QueueLength)!;
        }
    }

    private void Remove(ActivationData activation)
    {
        if (activation.Class.StatelessWorker is not null)
        {
            if (_workers.TryGetValue(activation.GrainId, out var workers))
            {
                lock (workers)
                {
                    workers.Remove(activation);
                }
            }

            return;
        }

        _activations.TryRemove(new KeyValuePair<GrainId, ActivationData>(activation.GrainId, activation));
    }

    private string NewActivationId() => $"{runtime.SiloAddress.Generation}.{Interlocked.Increment(ref _nextActivation)}";

    [LoggerMessage(Level = LogLevel.Warning, Message = "Activating {Grain} failed")]
    private static partial void LogActivationFailed(ILogger logger, GrainId grain, Exception error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Deactivating {Grain} threw")]
    private static partial void LogDeactivationFailed(ILogger logger, GrainId grain, Exception error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Deactivated {Grain} ({Reason})")]
    private static partial void LogDeactivated(ILogger logger, GrainId grain, DeactivationReason reason);
}

/// <summary>OnActivateAsync (or building the grain) failed; the request that needed the activation fails with this.</summary>
public sealed class ActivationFailedException : Exception
{
    public ActivationFailedException(GrainId grain, Exception innerException)
        : base($"activating {grain} failed: {innerException.Message}", innerException)
    {
    }

    public ActivationFailedException()
    {
    }

    public ActivationFailedException(string message)
        : base(message)
    {
    }

    public ActivationFailedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
