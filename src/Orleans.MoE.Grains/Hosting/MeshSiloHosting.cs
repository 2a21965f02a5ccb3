using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;

namespace Orleans.MoE.Grains.Hosting;

/// <summary>
/// The settings every mesh silo shares, read from configuration: the cluster it belongs to
/// ("Cluster:ClusterId", "Cluster:ServiceId" → Orleans' <see cref="ClusterOptions"/>) and its endpoints
/// ("Silo:Host", "Silo:Port" for silo-to-silo traffic, "Silo:GatewayPort" for clients → Orleans'
/// <see cref="EndpointOptions"/>; a port of 0 picks a free one).
/// </summary>
public static class MeshSiloHosting
{
    public const string DefaultClusterId = "default";

    public const string DefaultServiceId = "orleans-moe";

    /// <summary>The cluster id configured ("Cluster:ClusterId"), else <see cref="DefaultClusterId"/>.</summary>
    public static string ClusterId(IConfiguration configuration) => Setting(configuration, "Cluster:ClusterId") ?? DefaultClusterId;

    /// <summary>The silo's endpoints as configured (free ports where 0 or unset).</summary>
    public static (IPAddress Host, int SiloPort, int GatewayPort) Endpoints(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var hostText = Setting(configuration, "Silo:Host") ?? "127.0.0.1";
        var host = IPAddress.TryParse(hostText, out var address) && !address.Equals(IPAddress.Any) && !address.Equals(IPAddress.IPv6Any)
            ? address
            : throw new FormatException($"Silo:Host '{hostText}' is not an IP address this silo can advertise (the VM's own address, not 0.0.0.0)");
        return (host, Port(configuration, "Silo:Port"), Port(configuration, "Silo:GatewayPort"));
    }

    /// <summary>Cluster id, service id and endpoints from configuration; membership is the caller's choice.</summary>
    public static ISiloBuilder UseMeshEndpoints(this ISiloBuilder silo, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(silo);
        var (host, siloPort, gatewayPort) = Endpoints(configuration);
        silo.Configure<ClusterOptions>(o =>
        {
            o.ClusterId = ClusterId(configuration);
            o.ServiceId = Setting(configuration, "Cluster:ServiceId") ?? DefaultServiceId;
        });
        silo.ConfigureEndpoints(host, siloPort, gatewayPort, listenOnAnyHostAddress: false);
        return silo;
    }

    /// <summary>
    /// A silo that is a cluster of its own or of silos on this host (Orleans' localhost clustering, its
    /// membership kept by the primary silo: <paramref name="primary"/>, or this one), on loopback.
    /// </summary>
    public static ISiloBuilder UseLocalCluster(this ISiloBuilder silo, IConfiguration configuration, IPEndPoint? primary = null)
    {
        ArgumentNullException.ThrowIfNull(silo);
        var (_, siloPort, gatewayPort) = Endpoints(configuration);
        return silo.UseLocalhostClustering(siloPort, gatewayPort, primary, Setting(configuration, "Cluster:ServiceId") ?? DefaultServiceId, ClusterId(configuration));
    }

    /// <summary>A TCP port nobody listens on right now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static int Port(IConfiguration configuration, string key)
    {
        var text = Setting(configuration, key);
        if (text is null)
        {
            return FreePort();
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port <= 65535
            ? port == 0 ? FreePort() : port
            : throw new FormatException($"{key} '{text}' is not a TCP port (0-65535)");
    }

    private static string? Setting(IConfiguration configuration, string key) => configuration[key] is { Length: > 0 } value ? value : null;
}
