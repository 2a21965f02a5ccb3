using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.MoE.Grains.Hosting;

namespace Orleans.MoE.Grains.Tests;

/// <summary>Mutual TLS: silos and clients with certificates from the cluster's CA talk over real TCP; peers without one, or with another CA's, are refused.</summary>
public sealed class TlsTests : IDisposable
{
    private readonly TestCertificates _cluster = new("cluster");
    private readonly TestCertificates _other = new("intruder");
    private readonly string _clusterId = "tls-" + Guid.NewGuid().ToString("N")[..8];

    public void Dispose()
    {
        _cluster.Dispose();
        _other.Dispose();
    }

    private IHost Silo(MeshTls tls, int siloPort, int gatewayPort, IPEndPoint? primary)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.SetMinimumLevel(LogLevel.Critical);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Cluster:ClusterId"] = _clusterId,
            ["Silo:Port"] = siloPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Silo:GatewayPort"] = gatewayPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        var (certificate, authority) = tls.Load();
        builder.UseOrleans(silo => silo.UseLocalCluster(builder.Configuration, primary).UseMeshTls(certificate, authority));
        return builder.Build();
    }

    private async Task<IHost> ClientAsync(int gatewayPort, MeshTls? tls)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.SetMinimumLevel(LogLevel.Critical);
        builder.UseOrleansClient(client => client.UseMeshGateways([new IPEndPoint(IPAddress.Loopback, gatewayPort)], _clusterId, tls: tls));
        var host = builder.Build();
        try
        {
            await host.StartAsync();
        }
        catch
        {
            host.Dispose();
            throw;
        }

        return host;
    }

    private static async Task<int> ActiveSilosAsync(IHost client) =>
        (await client.Services.GetRequiredService<IClusterClient>().GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true)).Count;

    [Fact]
    public async Task Peers_with_the_clusters_certificates_talk_and_others_are_refused()
    {
        var (port, gateway) = (MeshSiloHosting.FreePort(), MeshSiloHosting.FreePort());
        using var first = Silo(_cluster.Issue("silo-1"), port, gateway, null);
        await first.StartAsync();
        using var second = Silo(_cluster.Issue("silo-2"), MeshSiloHosting.FreePort(), MeshSiloHosting.FreePort(), new IPEndPoint(IPAddress.Loopback, port));
        await second.StartAsync();

        using (var client = await ClientAsync(gateway, _cluster.Issue("front-end")))
        {
            Assert.Equal(2, await ActiveSilosAsync(client));
            await client.StopAsync();
        }

        // A client with another CA's certificate, and one without any, never get in.
        await Assert.ThrowsAnyAsync<OrleansException>(() => ClientAsync(gateway, _other.Issue("intruder-client")));
        await Assert.ThrowsAnyAsync<OrleansException>(() => ClientAsync(gateway, null));

        // Nor does a silo with another CA's certificate: it cannot join, and the cluster stays as it was.
        using var intruder = Silo(_other.Issue("intruder-silo"), MeshSiloHosting.FreePort(), MeshSiloHosting.FreePort(), new IPEndPoint(IPAddress.Loopback, port));
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await Assert.ThrowsAnyAsync<Exception>(() => intruder.StartAsync(patience.Token));
        using (var client = await ClientAsync(gateway, _cluster.Issue("front-end-2")))
        {
            Assert.Equal(2, await ActiveSilosAsync(client));
            await client.StopAsync();
        }

        await second.StopAsync();
        await first.StopAsync();
    }
}
