using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Orleans.MoE.Runtime.Directory;

/// <summary>A silo's slice of the grain directory, reached by other silos as a system target.</summary>
public interface IDirectoryPartition : ISystemTarget
{
    /// <summary>
    /// Registers the activation unless the grain already has a live one (other than
    /// <paramref name="replacing"/>, which a migrated activation takes over from); returns the winner.
    /// </summary>
    Task<ActivationAddress> RegisterAsync(ActivationAddress address, ActivationAddress? replacing);

    Task<ActivationAddress?> LookupAsync(GrainId grain);

    /// <summary>Removes the registration if it is still this activation.</summary>
    Task UnregisterAsync(ActivationAddress address);
}

/// <summary>
/// The grain directory, partitioned over the live silos on a consistent-hash ring (several points
/// per silo). Each grain's registration lives on the silo owning its hash; registering is first-wins at
/// that owner, so a grain has at most one activation even when several silos activate it at once.
/// Lookups are cached. When the ring changes (a silo joins, leaves or dies), entries of dead silos are
/// dropped and every silo re-registers its activations with their new owners.
/// </summary>
internal sealed partial class GrainDirectory
{
    private const int PointsPerSilo = 32;
    private readonly SiloRuntime _runtime;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<GrainId, ActivationAddress> _cache = new();
    private (uint Hash, SiloAddress Silo)[] _ring = [];

    public GrainDirectory(SiloRuntime runtime, ILogger logger)
    {
        _runtime = runtime;
        _logger = logger;
        Partition = new LocalPartition(this);
    }

    public LocalPartition Partition { get; }

    /// <summary>Rebuilds the ring from the live silos and re-homes registrations.</summary>
    public void OnClusterChanged(IReadOnlyCollection<SiloAddress> live, IReadOnlyCollection<SiloAddress> dead)
    {
        _ring = live.SelectMany(s => Enumerable.Range(0, PointsPerSilo).Select(i => (Hashing.Stable($"{s}#{i}"), s)))
            .OrderBy(p => p.Item1).ToArray();
        foreach (var (grain, address) in _cache)
        {
            if (dead.Contains(address.Silo))
            {
                _cache.TryRemove(grain, out _);
            }
        }

        Partition.DropSilos(dead);
        _ = RehomeAsync();
    }

    public SiloAddress? OwnerOf(GrainId grain)
    {
        var ring = _ring;
        if (ring.Length == 0)
        {
            return null;
        }

        var hash = grain.StableHash();
        var low = 0;
        var high = ring.Length;
        while (low < high)
        {
            var mid = (low + high) / 2;
            if (ring[mid].Hash < hash)
            {
                low = mid + 1;
            }
            else
            {
                high = mid;
            }
        }

        return ring[low % ring.Length].Silo;
    }

    public async Task<ActivationAddress> RegisterAsync(ActivationAddress address, ActivationAddress? replacing = null)
    {
        var winner = await AtOwnerAsync(address.Grain, owner => owner.RegisterAsync(address, replacing)).ConfigureAwait(false);
        _cache[address.Grain] = winner;
        return winner;
    }

    public async Task<ActivationAddress?> LookupAsync(GrainId grain)
    {
        if (_cache.TryGetValue(grain, out var cached))
        {
            return cached;
        }

        var found = await AtOwnerAsync(grain, owner => owner.LookupAsync(grain)).ConfigureAwait(false);
        if (found is not null)
        {
            _cache[grain] = found;
        }

        return found;
    }

    /// <summary>
    /// Calls the partition owning <paramref name="grain"/>; when its silo cannot be reached, reports it
    /// and asks the owner anew until the ring has moved past it (or the response timeout passes).
    /// </summary>
    private async Task<T> AtOwnerAsync<T>(GrainId grain, Func<IDirectoryPartition, Task<T>> call)
    {
        var deadline = _runtime.Time.GetUtcNow() + _runtime.MessagingOptions.ResponseTimeout;
        for (var attempt = 0; ; attempt++)
        {
            var owner = OwnerOf(grain) ?? _runtime.SiloAddress;
            try
            {
                return await call(owner == _runtime.SiloAddress ? Partition : _runtime.GrainFactory.GetSystemTarget<IDirectoryPartition>(owner)).ConfigureAwait(false);
            }
            catch (Exception e) when (e is Messaging.ConnectionClosedException or SiloUnavailableException && _runtime.Time.GetUtcNow() < deadline)
            {
                _runtime.Membership.ReportCallFailure(owner);
                LogOwnerUnreachable(_logger, grain, owner, e.Message);
                await Task.Delay(Messaging.CallOutcome.RetryDelay(attempt, TimeSpan.FromMilliseconds(250)), _runtime.Time).ConfigureAwait(false);
            }
        }
    }

    public async Task UnregisterAsync(ActivationAddress address)
    {
        _cache.TryRemove(new KeyValuePair<GrainId, ActivationAddress>(address.Grain, address));
        try
        {
            await AtOwnerAsync(address.Grain, async owner =>
            {
                await owner.UnregisterAsync(address).ConfigureAwait(false);
                return true;
            }).ConfigureAwait(false);
        }
        catch (Exception e) when (e is Messaging.ConnectionClosedException or SiloUnavailableException or TimeoutException)
        {
            // The owner is gone; its partition went with it.
        }
    }

    public void Cache(ActivationAddress address) => _cache[address.Grain] = address;

    public ActivationAddress? Cached(GrainId grain) => _cache.TryGetValue(grain, out var address) ? address : null;

    public void Invalidate(GrainId grain) => _cache.TryRemove(grain, out _);

    private IDirectoryPartition Owner(GrainId grain)
    {
        var owner = OwnerOf(grain) ?? _runtime.SiloAddress;
        return owner == _runtime.SiloAddress ? Partition : _runtime.GrainFactory.GetSystemTarget<IDirectoryPartition>(owner);
    }

    private async Task RehomeAsync()
    {
        foreach (var activation in _runtime.Catalog.Activations.Where(a => a.State == ActivationState.Valid).ToList())
        {
            try
            {
                var winner = await RegisterAsync(activation.Address).ConfigureAwait(false);
                if (winner != activation.Address)
                {
                    LogDuplicate(_logger, activation.GrainId, winner.Silo);
                    await _runtime.Catalog.DeactivateAsync(activation, DeactivationReason.Duplicate).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is Messaging.ConnectionClosedException or SiloUnavailableException or TimeoutException)
            {
                // The next ring change retries.
            }
        }

        Partition.HandOffForeign();
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Directory owner {Owner} of {Grain} unreachable: {Reason}")]
    private static partial void LogOwnerUnreachable(ILogger logger, GrainId grain, SiloAddress owner, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Grain} is registered on {Silo} too; deactivating the duplicate here")]
    private static partial void LogDuplicate(ILogger logger, GrainId grain, SiloAddress silo);

    /// <summary>The registrations this silo owns.</summary>
    internal sealed class LocalPartition(GrainDirectory directory) : IDirectoryPartition
    {
        private readonly object _lock = new();
        private readonly Dictionary<GrainId, ActivationAddress> _entries = [];

        public int Count
        {
            get
            {
                lock (_lock)
                {
                    return _entries.Count;
                }
            }
        }

        public Task<ActivationAddress> RegisterAsync(ActivationAddress address, ActivationAddress? replacing)
        {
            lock (_lock)
            {
                if (_entries.TryGetValue(address.Grain, out var existing) && existing != replacing && !directory._runtime.Membership.IsDead(existing.Silo))
                {
                    return Task.FromResult(existing);
                }

                _entries[address.Grain] = address;
                return Task.FromResult(address);
            }
        }

        public Task<ActivationAddress?> LookupAsync(GrainId grain)
        {
            lock (_lock)
            {
                return Task.FromResult(_entries.TryGetValue(grain, out var address) && !directory._runtime.Membership.IsDead(address.Silo) ? address : null);
            }
        }

        public Task UnregisterAsync(ActivationAddress address)
        {
            lock (_lock)
            {
                if (_entries.TryGetValue(address.Grain, out var existing) && existing == address)
                {
                    _entries.Remove(address.Grain);
                }
            }

            return Task.CompletedTask;
        }

        public void DropSilos(IReadOnlyCollection<SiloAddress> dead)
        {
            lock (_lock)
            {
                foreach (var grain in _entries.Where(e => dead.Contains(e.Value.Silo)).Select(e => e.Key).ToList())
                {
                    _entries.Remove(grain);
                }
            }
        }

        /// <summary>Entries this silo no longer owns move to their new owners (who keep an existing live entry if they have one).</summary>
        public void HandOffForeign()
        {
            List<ActivationAddress> foreign;
            lock (_lock)
            {
                foreign = _entries.Values.Where(a => directory.OwnerOf(a.Grain) is { } owner && owner != directory._runtime.SiloAddress).ToList();
                foreach (var address in foreign)
                {
                    _entries.Remove(address.Grain);
                }
            }

            foreach (var address in foreign)
            {
                _ = directory.Owner(address.Grain).RegisterAsync(address, null);
            }
        }
    }
}
