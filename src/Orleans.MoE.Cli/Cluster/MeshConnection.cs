using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.MoE.Grains;
using Orleans.MoE.Grains.Hosting;
using Orleans.Runtime.Messaging;

namespace Orleans.MoE.Cli.Cluster;

/// <summary>An Orleans client of a running cluster, connected through its gateways, for the <c>moe</c> commands.</summary>
internal sealed class MeshConnection : IAsyncDisposable
{
    private readonly IHost _host;

    private MeshConnection(IHost host) => _host = host;

    public IClusterClient Client => _host.Services.GetRequiredService<IClusterClient>();

    public IGrainFactory GrainFactory => Client;

    /// <summary>Connects (Orleans retries a gateway that is not up yet for a few seconds, then fails with the reason).</summary>
    /// <remarks>Mutual TLS when the environment names a certificate (<c>Tls__CertificateFile</c>, <c>Tls__KeyFile</c>, <c>Tls__AuthorityFile</c>), as for silos.</remarks>
    public static async Task<MeshConnection> ConnectAsync(IReadOnlyList<IPEndPoint> gateways, string clusterId, CancellationToken cancellationToken = default)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.SetMinimumLevel(LogLevel.Critical);
        builder.Configuration.AddEnvironmentVariables();
        var tls = MeshTls.FromConfiguration(builder.Configuration);
        builder.UseOrleansClient(client => client.UseMeshGateways(gateways, clusterId, tls: tls));
        var host = builder.Build();
        try
        {
            await host.StartAsync(cancellationToken);
        }
        catch (Exception e) when (MeshFaults.IsTransient(e))
        {
            host.Dispose();
            throw new ConnectionFailedException(
                $"cannot reach cluster '{clusterId}' through {string.Join(", ", gateways)}: {e.Message} Is a silo's gateway (Silo:GatewayPort) listening there, and is the cluster id right (--cluster-id)?", e);
        }
        catch
        {
            host.Dispose();
            throw;
        }

        return new MeshConnection(host);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _host.StopAsync(TimeSpan.FromSeconds(5));
        }
        finally
        {
            _host.Dispose();
        }
    }
}

/// <summary>Disposes a list of connections together.</summary>
internal sealed class AsyncDisposables(IEnumerable<IAsyncDisposable> items) : IAsyncDisposable
{
    public async ValueTask DisposeAsync()
    {
        foreach (var item in items)
        {
            await item.DisposeAsync();
        }
    }
}
