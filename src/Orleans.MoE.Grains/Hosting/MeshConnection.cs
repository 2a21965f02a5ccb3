using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Runtime.Messaging;

namespace Orleans.MoE.Grains.Hosting;

/// <summary>An Orleans client of a running cluster in a host of its own, connected through the silos' gateways (the <c>moe</c> commands, tests).</summary>
public sealed class MeshConnection : IAsyncDisposable
{
    private readonly IHost _host;

    private MeshConnection(IHost host) => _host = host;

    public IClusterClient Client => _host.Services.GetRequiredService<IClusterClient>();

    public IGrainFactory GrainFactory => Client;

    /// <summary>Connects (Orleans retries a gateway that is not up yet for a few seconds, then fails with the reason).</summary>
    /// <remarks>With <paramref name="tls"/>, the client presents that certificate from the cluster's CA.</remarks>
    public static async Task<MeshConnection> ConnectAsync(IReadOnlyList<IPEndPoint> gateways, string clusterId, MeshTls? tls = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(gateways);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.SetMinimumLevel(LogLevel.Critical);
        builder.UseOrleansClient(client => client.UseMeshGateways(gateways, clusterId, tls: tls));
        var host = builder.Build();
        try
        {
            await host.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (MeshFaults.IsTransient(e))
        {
            host.Dispose();
            throw Unreachable(gateways, clusterId, e);
        }
        catch
        {
            host.Dispose();
            throw;
        }

        return new MeshConnection(host);
    }

    /// <summary>A client's failure to connect, saying through which gateways to which cluster and what to check.</summary>
    public static ConnectionFailedException Unreachable(IReadOnlyList<IPEndPoint> gateways, string clusterId, Exception error)
    {
        ArgumentNullException.ThrowIfNull(gateways);
        ArgumentNullException.ThrowIfNull(error);
        return new ConnectionFailedException(
            $"cannot reach cluster '{clusterId}' through {string.Join(", ", gateways)}: {error.Message} Is a silo's gateway (Silo:GatewayPort) listening there, and is the cluster id right (--cluster-id)?", error);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _host.StopAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        finally
        {
            _host.Dispose();
        }
    }
}

