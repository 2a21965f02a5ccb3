using Orleans.MoE.Grains.Transport;
using Orleans.Networking.Shared;
using Orleans.Runtime.Messaging;

namespace Orleans.MoE.Grains;

/// <summary>
/// The one rule for which failures of a grain call or a data channel call are about reachability (a silo
/// died or is unreachable, the call timed out, the connection broke) rather than about the request:
/// those are worth sending again, to the grain's new activation or another silo.
/// </summary>
public static class MeshFaults
{
    public static bool IsTransient(Exception e) =>
        e is OrleansMessageRejectionException or ConnectionFailedException or SocketConnectionException
            or TimeoutException or GatewayTooBusyException or ClientNotAvailableException
            or DataChannelException or System.Net.Sockets.SocketException;
}
