using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.MoE.Grains.Cluster;
using Orleans.MoE.Grains.Experts;

namespace Orleans.MoE.Grains.Transport;

/// <summary>
/// This silo's connections to the other silos' data channels, one per silo, opened on first use. A silo's
/// endpoint is what it published (<see cref="SiloMetadataKeys.DataEndpoint"/>) or what one of its experts
/// said when located. Orleans' membership is the authority on who is alive: when it declares a silo dead,
/// its connection is closed at once, so calls waiting on a hung silo fail then (and the gates send those
/// experts again) instead of at the call timeout, which is Orleans' own response timeout.
/// </summary>
public sealed class DataChannelClient(
    MeshSilos silos, IClusterMembershipService membership, DataChannelSecurity security, IOptions<MeshOptions> options,
    IOptions<SiloMessagingOptions> messaging) : ILifecycleParticipant<ISiloLifecycle>, IAsyncDisposable
{
    private readonly ConcurrentDictionary<SiloAddress, IPEndPoint> _learned = new();
    private readonly ConcurrentDictionary<SiloAddress, Lazy<Task<DataChannelConnection>>> _connections = new();
    private readonly CancellationTokenSource _stopping = new();
    private int _disposed;

    /// <summary>An expert said it lives on <paramref name="silo"/>, whose data channel is at <paramref name="endpoint"/>.</summary>
    public void Learn(SiloAddress silo, string endpoint)
    {
        ArgumentNullException.ThrowIfNull(silo);
        if (IPEndPoint.TryParse(endpoint, out var parsed))
        {
            _learned[silo] = parsed;
        }
    }

    /// <summary>Runs <paramref name="batch"/> on <paramref name="silo"/>'s experts (the caller keeps and disposes the batch).</summary>
    public async Task<ExpertBatchResult> ExecuteAsync(SiloAddress silo, ExpertBatch batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(silo);
        var connection = _connections.GetOrAdd(silo, s => new Lazy<Task<DataChannelConnection>>(() => OpenAsync(s)));
        DataChannelConnection open;
        try
        {
            open = await connection.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (DataChannelException)
        {
            _connections.TryRemove(KeyValuePair.Create(silo, connection));
            throw;
        }

        if (open.IsClosed)
        {
            _connections.TryRemove(KeyValuePair.Create(silo, connection));
            return await ExecuteAsync(silo, batch, cancellationToken).ConfigureAwait(false);
        }

        return await open.ExecuteAsync(batch, messaging.Value.ResponseTimeout, cancellationToken).ConfigureAwait(false);
    }

    public void Participate(ISiloLifecycle lifecycle)
    {
        ArgumentNullException.ThrowIfNull(lifecycle);
        lifecycle.Subscribe<DataChannelClient>(
            ServiceLifecycleStage.Active - 1,
            started =>
            {
                _ = FollowMembershipAsync(_stopping.Token);
                return Task.CompletedTask;
            },
            _ =>
            {
                _stopping.Cancel();
                return Task.CompletedTask;
            });
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return; // The container disposes it as the client and as a lifecycle participant.
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        foreach (var silo in _connections.Keys.ToList())
        {
            await DropAsync(silo, "this silo is stopping").ConfigureAwait(false);
        }

        _stopping.Dispose();
    }

    private async Task<DataChannelConnection> OpenAsync(SiloAddress silo)
    {
        var endpoint = _learned.GetValueOrDefault(silo)
            ?? (IPEndPoint.TryParse(silos.Metadata(silo).GetValueOrDefault(SiloMetadataKeys.DataEndpoint) ?? "", out var published) ? published : null)
            ?? throw new DataChannelException($"silo {silo} has not published its data channel endpoint yet");
        var channel = options.Value.DataChannel;
        return await DataChannelConnection.OpenAsync(endpoint, silo.ToString(), security, channel.ConnectTimeout, channel.MaxPayloadBytes, _stopping.Token).ConfigureAwait(false);
    }

    /// <summary>Closes the connections to silos that membership declares dead.</summary>
    private async Task FollowMembershipAsync(CancellationToken stopping)
    {
        try
        {
            await foreach (var snapshot in membership.MembershipUpdates.WithCancellation(stopping).ConfigureAwait(false))
            {
                foreach (var silo in _connections.Keys.Concat(_learned.Keys).Distinct().ToList())
                {
                    if (snapshot.GetSiloStatus(silo) == SiloStatus.Dead)
                    {
                        _learned.TryRemove(silo, out _);
                        await DropAsync(silo, $"membership declared silo {silo} dead").ConfigureAwait(false);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    private async Task DropAsync(SiloAddress silo, string reason)
    {
        if (_connections.TryRemove(silo, out var connection) && connection.IsValueCreated)
        {
            try
            {
                var open = await connection.Value.ConfigureAwait(false);
                open.Close(new DataChannelException(reason));
                await open.DisposeAsync().ConfigureAwait(false);
            }
            catch (DataChannelException)
            {
                // It never opened.
            }
        }
    }
}
