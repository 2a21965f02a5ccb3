using System.Globalization;
using System.Net;

namespace Orleans.MoE.Runtime;

/// <summary>
/// A silo incarnation: its endpoint and a generation (its start time), so a silo restarted on the same
/// endpoint is a different silo and the cluster never mistakes it for the dead one.
/// </summary>
[Serialization.GenerateSerializer]
public sealed record SiloAddress(string Host, int Port, long Generation)
{
    public IPEndPoint EndPoint => new(IPAddress.Parse(Host), Port);

    public override string ToString() => $"{Host}:{Port.ToString(CultureInfo.InvariantCulture)}@{Generation.ToString(CultureInfo.InvariantCulture)}";

    public static SiloAddress Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var at = text.LastIndexOf('@');
        var colon = text.LastIndexOf(':', at < 0 ? text.Length - 1 : at);
        if (at < 0 || colon < 0)
        {
            throw new FormatException($"'{text}' is not a silo address (host:port@generation)");
        }

        return new SiloAddress(text[..colon], int.Parse(text[(colon + 1)..at], CultureInfo.InvariantCulture), long.Parse(text[(at + 1)..], CultureInfo.InvariantCulture));
    }

    /// <summary>A stable hash for the ring.</summary>
    public uint StableHash() => Hashing.Stable(ToString());
}
