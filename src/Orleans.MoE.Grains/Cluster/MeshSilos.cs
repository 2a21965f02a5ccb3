using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Orleans.MoE.Grains.Cluster;

/// <summary>
/// The live silos of the cluster as this silo knows them, each with the metadata it published (models,
/// expert memory, GPU). Liveness is Orleans' membership; metadata changes at run time (free expert
/// memory, a model refused), so each silo pushes its changes to its peers (<see cref="ISiloMetadataGrain"/>,
/// one-way) and asks a silo it has not heard from yet. Placement directors and the planner read it.
/// </summary>
public sealed partial class MeshSilos(
    ILocalSiloDetails local, IClusterMembershipService membership, IGrainFactory grains, ILogger<MeshSilos> logger)
    : ISiloMetadataPublisher, ILifecycleParticipant<ISiloLifecycle>
{
    private readonly ConcurrentDictionary<SiloAddress, (long Version, Dictionary<string, string> Metadata)> _known = new();
    private readonly object _publishLock = new();
    private Dictionary<string, string> _own = [];
    private long _version;

    public SiloAddress Local => local.SiloAddress;

    /// <summary>Active silos, with the metadata known for each (empty until heard from).</summary>
    public IReadOnlyList<SiloInfo> Live =>
        membership.CurrentSnapshot.Members.Values
            .Where(m => m.Status == SiloStatus.Active || (m.SiloAddress.Equals(Local) && m.Status is SiloStatus.Joining or SiloStatus.ShuttingDown))
            .Select(m => new SiloInfo(m.SiloAddress, Metadata(m.SiloAddress)))
            .ToList();

    /// <summary>The metadata known for <paramref name="silo"/> (empty when none yet).</summary>
    public IReadOnlyDictionary<string, string> Metadata(SiloAddress silo) =>
        silo.Equals(Local) ? LocalMetadata().Metadata
        : _known.TryGetValue(silo, out var known) ? known.Metadata
        : new Dictionary<string, string>();

    /// <summary>This silo's metadata and version.</summary>
    public (long Version, Dictionary<string, string> Metadata) LocalMetadata()
    {
        lock (_publishLock)
        {
            return (_version, _own);
        }
    }

    public Task PublishAsync(IReadOnlyDictionary<string, string?> changes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(changes);
        long version;
        Dictionary<string, string> metadata;
        lock (_publishLock)
        {
            metadata = new Dictionary<string, string>(_own, StringComparer.Ordinal);
            foreach (var (key, value) in changes)
            {
                if (value is null)
                {
                    metadata.Remove(key);
                }
                else
                {
                    metadata[key] = value;
                }
            }

            _own = metadata;
            version = ++_version;
        }

        foreach (var peer in Peers())
        {
            // One-way: a peer that is gone does not hold us up; one that missed it asks on its next refresh.
            _ = grains.GetGrain<ISiloMetadataGrain>(peer.ToParsableString()).NotifyAsync(Local, version, metadata);
        }

        return Task.CompletedTask;
    }

    /// <summary>Records a peer's metadata unless a newer version is already known.</summary>
    public void Accept(SiloAddress silo, long version, Dictionary<string, string> metadata)
    {
        ArgumentNullException.ThrowIfNull(silo);
        _known.AddOrUpdate(silo, (version, metadata), (_, held) => version > held.Version ? (version, metadata) : held);
    }

    /// <summary>Asks every live peer not heard from yet (or, with <paramref name="all"/>, every peer) for its metadata; forgets dead silos.</summary>
    public async Task RefreshAsync(bool all = false, CancellationToken cancellationToken = default)
    {
        var peers = Peers().ToList();
        foreach (var gone in _known.Keys.Except(peers).ToList())
        {
            _known.TryRemove(gone, out _);
        }

        await Task.WhenAll(peers.Where(p => all || !_known.ContainsKey(p)).Select(async peer =>
        {
            try
            {
                var (version, metadata) = await grains.GetGrain<ISiloMetadataGrain>(peer.ToParsableString()).GetAsync()
                    .WaitAsync(TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
                Accept(peer, version, metadata);
            }
            catch (Exception e) when (MeshFaults.IsTransient(e) || e is OperationCanceledException)
            {
                LogRefreshFailed(logger, peer, e.Message);
            }
        })).ConfigureAwait(false);
    }

    public void Participate(ISiloLifecycle lifecycle)
    {
        ArgumentNullException.ThrowIfNull(lifecycle);
        var stopping = new CancellationTokenSource();
        lifecycle.Subscribe<MeshSilos>(
            ServiceLifecycleStage.Active - 1,
            ct =>
            {
                _ = FollowMembershipAsync(stopping.Token);
                return Task.CompletedTask;
            },
            ct =>
            {
                stopping.Cancel();
                return Task.CompletedTask;
            });
    }

    private IEnumerable<SiloAddress> Peers() =>
        membership.CurrentSnapshot.Members.Values.Where(m => m.Status == SiloStatus.Active && !m.SiloAddress.Equals(Local)).Select(m => m.SiloAddress);

    /// <summary>On every membership change: learn the metadata of silos that joined, forget those that died.</summary>
    private async Task FollowMembershipAsync(CancellationToken stopping)
    {
        try
        {
            await foreach (var _ in membership.MembershipUpdates.WithCancellation(stopping).ConfigureAwait(false))
            {
                await RefreshAsync(cancellationToken: stopping).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Could not read the metadata of silo {Silo}: {Reason}")]
    private static partial void LogRefreshFailed(ILogger logger, SiloAddress silo, string reason);
}
