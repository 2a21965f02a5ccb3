using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;

namespace Orleans.MoE.Grains.Hosting;

/// <summary>How a process outside the cluster (a front end, the <c>moe</c> command) reaches it as an Orleans client.</summary>
public static class MeshClientHosting
{
    /// <summary>
    /// Connects through <paramref name="gateways"/> (silos' gateway endpoints) to the cluster <paramref name="clusterId"/>,
    /// refreshing the gateway list every second so a dead gateway is left quickly; with <paramref name="tls"/>,
    /// presenting this client's certificate from the cluster's CA. Calls carry the caller's trace.
    /// </summary>
    public static IClientBuilder UseMeshGateways(this IClientBuilder client, IReadOnlyList<IPEndPoint> gateways, string clusterId, string? serviceId = null, MeshTls? tls = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(gateways);
        if (gateways.Count == 0)
        {
            throw new ArgumentException("at least one gateway is needed to reach a cluster", nameof(gateways));
        }

        client.UseStaticClustering(gateways.ToArray());
        client.Services.Configure<ClusterOptions>(o =>
        {
            o.ClusterId = clusterId;
            o.ServiceId = serviceId ?? MeshSiloHosting.DefaultServiceId;
        });
        client.Services.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = TimeSpan.FromSeconds(1));
        client.UseConnectionRetryFilter(new ConnectionRetries(TimeSpan.FromSeconds(10)).ShouldRetryAsync);
        client.AddActivityPropagation(); // the caller's trace goes on in the silos
        if (tls is not null)
        {
            var (certificate, authority) = tls.Load();
            client.UseMeshTls(certificate, authority);
        }

        return client;
    }

    /// <summary>Retries a first connection that failed (the silos may be starting) for a while, then gives up with the reason.</summary>
    private sealed class ConnectionRetries(TimeSpan patience)
    {
        private readonly DateTime _until = DateTime.UtcNow + patience;

        public async Task<bool> ShouldRetryAsync(Exception exception, CancellationToken cancellationToken)
        {
            if (DateTime.UtcNow >= _until)
            {
                return false;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken).ConfigureAwait(false);
            return true;
        }
    }
}
