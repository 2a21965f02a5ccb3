using Orleans.MoE.Runtime.Messaging;

namespace Orleans.MoE.Runtime;

internal enum ActivationState
{
    Activating,
    Valid,
    Deactivating,
    Invalid,
}

/// <summary>
/// One activation of a grain on this silo: the instance, its single-threaded scheduler and its queue.
/// Requests run one at a time to completion unless the class is [Reentrant], the method is
/// [AlwaysInterleave] or the request's call chain already passed through this grain (which would
/// otherwise deadlock); interleaved requests still run one turn at a time on the exclusive scheduler.
/// </summary>
internal sealed class ActivationData
{
    private readonly object _lock = new();
    private readonly Queue<Message> _waiting = new();
    private readonly TaskScheduler _scheduler = new ConcurrentExclusiveSchedulerPair().ExclusiveScheduler;
    private int _running;
    private int _runningExclusive;
    private long _collectionDelayUntil;

    public ActivationData(SiloRuntime runtime, GrainId grainId, GrainClassInfo grainClass, string activationId)
    {
        Runtime = runtime;
        GrainId = grainId;
        Class = grainClass;
        ActivationId = activationId;
        LastActive = runtime.Time.GetUtcNow();
    }

    public SiloRuntime Runtime { get; }
    public GrainId GrainId { get; }
    public GrainClassInfo Class { get; }
    public string ActivationId { get; }
    public object? Instance { get; set; }
    public ActivationState State { get; private set; } = ActivationState.Activating;
    public DateTimeOffset LastActive { get; private set; }
    public DeactivationReason? PendingDeactivation { get; private set; }

    /// <summary>The IPersistentState objects given to the grain's constructor (read before OnActivateAsync).</summary>
    public object[] PersistentStates { get; set; } = [];

    /// <summary>Migration: state handed over from the previous activation, consumed by OnActivate.</summary>
    public IReadOnlyDictionary<string, byte[]>? RehydrationState { get; set; }

    /// <summary>Migration: where the activation should move when it deactivates.</summary>
    public SiloAddress? MigrationTarget { get; set; }

    public ActivationAddress Address => new(GrainId, Runtime.SiloAddress, ActivationId);

    public bool IsIdle
    {
        get
        {
            lock (_lock)
            {
                return _running == 0 && _waiting.Count == 0;
            }
        }
    }

    public int QueueLength
    {
        get
        {
            lock (_lock)
            {
                return _running + _waiting.Count;
            }
        }
    }

    public bool CollectionDelayed => Runtime.Time.GetUtcNow().UtcTicks < Interlocked.Read(ref _collectionDelayUntil);

    public void DelayCollection(TimeSpan duration) => Interlocked.Exchange(ref _collectionDelayUntil, (Runtime.Time.GetUtcNow() + duration).UtcTicks);

    /// <summary>Runs work on this activation's scheduler (one turn at a time).</summary>
    public Task RunOnScheduler(Func<Task> work) =>
        Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.DenyChildAttach, _scheduler).Unwrap();

    /// <summary>Queues a request; returns false when the activation can no longer take it (the caller re-routes).</summary>
    public bool Enqueue(Message message)
    {
        lock (_lock)
        {
            if (State is ActivationState.Deactivating or ActivationState.Invalid)
            {
                return false;
            }

            LastActive = Runtime.Time.GetUtcNow();
            if (State == ActivationState.Valid && CanStart(message))
            {
                Start(message);
            }
            else
            {
                _waiting.Enqueue(message);
            }

            return true;
        }
    }

    public void MarkValid()
    {
        lock (_lock)
        {
            State = ActivationState.Valid;
            PumpLocked();
        }
    }

    /// <summary>Stops taking requests; returns the ones that were waiting (to re-route).</summary>
    public List<Message> MarkDeactivating()
    {
        lock (_lock)
        {
            State = ActivationState.Deactivating;
            var waiting = _waiting.ToList();
            _waiting.Clear();
            return waiting;
        }
    }

    public void MarkInvalid()
    {
        lock (_lock)
        {
            State = ActivationState.Invalid;
        }
    }

    /// <summary>Completes when no request is running.</summary>
    public async Task WaitForIdleAsync(TimeSpan timeout)
    {
        var deadline = Runtime.Time.GetUtcNow() + timeout;
        while (Volatile.Read(ref _running) > 0 && Runtime.Time.GetUtcNow() < deadline)
        {
            await Task.Delay(5).ConfigureAwait(false);
        }
    }

    public void RequestDeactivation(DeactivationReason reason)
    {
        PendingDeactivation ??= reason;
        lock (_lock)
        {
            if (_running == 0 && State == ActivationState.Valid)
            {
                _ = Runtime.Catalog.DeactivateAsync(this, reason);
            }
        }
    }

    private bool CanStart(Message message)
    {
        if (_runningExclusive == 0)
        {
            return true;
        }

        return IsInterleaving(message);
    }

    private bool IsInterleaving(Message message) =>
        Class.Reentrant
        || (GrainTypeRegistry.Invoker(message.Interface).Info.Methods is var methods && message.MethodId < methods.Count && methods[message.MethodId].AlwaysInterleave)
        || message.CallChain.Contains(GrainId.ToString());

    private void Start(Message message)
    {
        var exclusive = !IsInterleaving(message);
        _running++;
        if (exclusive)
        {
            _runningExclusive++;
        }

        _ = RunOnScheduler(async () =>
        {
            try
            {
                await Runtime.Dispatcher.InvokeAsync(this, message).ConfigureAwait(false);
            }
            finally
            {
                Finished(exclusive);
            }
        });
    }

    private void Finished(bool exclusive)
    {
        lock (_lock)
        {
            _running--;
            if (exclusive)
            {
                _runningExclusive--;
            }

            LastActive = Runtime.Time.GetUtcNow();
            if (PendingDeactivation is { } reason && _running == 0 && State == ActivationState.Valid)
            {
                _ = Runtime.Catalog.DeactivateAsync(this, reason);
                return;
            }

            PumpLocked();
        }
    }

    private void PumpLocked()
    {
        if (State != ActivationState.Valid || PendingDeactivation is not null)
        {
            return;
        }

        while (_waiting.Count > 0 && CanStart(_waiting.Peek()))
        {
            Start(_waiting.Dequeue());
        }
    }
}

/// <summary>Where one activation of a grain lives.</summary>
[Serialization.GenerateSerializer]
public sealed record ActivationAddress(GrainId Grain, SiloAddress Silo, string ActivationId);
