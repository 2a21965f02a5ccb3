using System.Net;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.MoE.Grains.Cluster;

namespace Orleans.MoE.Grains.Transport;

/// <summary>
/// Runs the silo's <see cref="DataChannelServer"/> for as long as the silo serves: it listens on the address
/// Orleans listens on (the advertised one for peers) before the silo becomes active, publishes its endpoint
/// with the silo's metadata (<see cref="SiloMetadataKeys.DataEndpoint"/>) once active, and closes only after
/// the active stage has stopped, so experts moved off a silo that stops gracefully keep answering until then.
/// </summary>
public sealed class DataChannelHost(DataChannelServer server, ILocalSiloDetails local, IOptions<EndpointOptions> endpoints, ISiloMetadataPublisher publisher)
    : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle)
    {
        ArgumentNullException.ThrowIfNull(lifecycle);
        lifecycle.Subscribe<DataChannelHost>(ServiceLifecycleStage.ApplicationServices, Start, async _ => await server.DisposeAsync().ConfigureAwait(false));
        lifecycle.Subscribe<DataChannelHost>(ServiceLifecycleStage.Active, Publish, _ => Task.CompletedTask);
    }

    private Task Start(CancellationToken cancellationToken)
    {
        var advertised = local.SiloAddress.Endpoint.Address;
        var listening = endpoints.Value.SiloListeningEndpoint?.Address ?? advertised;
        server.Start(listening, IPAddress.Any.Equals(advertised) ? IPAddress.Loopback : advertised);
        return Task.CompletedTask;
    }

    private Task Publish(CancellationToken cancellationToken) =>
        publisher.PublishAsync(new Dictionary<string, string?> { [SiloMetadataKeys.DataEndpoint] = server.Endpoint!.ToString() }, cancellationToken);
}
