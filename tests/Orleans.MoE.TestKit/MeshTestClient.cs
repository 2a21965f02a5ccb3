using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.MoE.Grains.Hosting;

namespace Orleans.MoE.Testing;

/// <summary>An Orleans client, in a host of its own, of silos running in other processes (real TCP), through their gateways.</summary>
public sealed class MeshTestClient : IAsyncDisposable
{
    private readonly IHost _host;

    private MeshTestClient(IHost host) => _host = host;

    public IClusterClient Client => _host.Services.GetRequiredService<IClusterClient>();

    public static async Task<MeshTestClient> ConnectAsync(IEnumerable<int> gatewayPorts, string clusterId)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleansClient(client => client.UseMeshGateways(gatewayPorts.Select(p => new IPEndPoint(IPAddress.Loopback, p)).ToList(), clusterId));
        var host = builder.Build();
        await host.StartAsync();
        return new MeshTestClient(host);
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
