using System.Net;
using Orleans.MoE.Grains.Hosting;

namespace Orleans.MoE.Testing;

/// <summary>Clients of silos running in other processes (real TCP), through their gateways on loopback.</summary>
public static class MeshTestClient
{
    public static Task<MeshConnection> ConnectAsync(IEnumerable<int> gatewayPorts, string clusterId, MeshTls? tls = null) =>
        MeshConnection.ConnectAsync(gatewayPorts.Select(p => new IPEndPoint(IPAddress.Loopback, p)).ToList(), clusterId, tls);
}
