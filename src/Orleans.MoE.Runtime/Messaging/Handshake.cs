using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Orleans.MoE.Runtime.Messaging;

/// <summary>
/// Mutual proof of the cluster secret before any message flows. The acceptor sends a nonce; the
/// connector answers with its identity and HMAC-SHA256(secret, nonce ‖ identity) plus its own nonce;
/// the acceptor checks it in constant time and proves itself the same way. Nothing secret crosses
/// the wire, and a peer without the secret learns nothing but a rejection.
/// </summary>
internal static class Handshake
{
    private static readonly byte[] s_magic = "OMOE"u8.ToArray();
    private const byte ProtocolVersion = 1;
    private const int NonceLength = 16;
    private const byte Accepted = 1;
    private const byte RejectedSecret = 2;
    private const byte RejectedCluster = 3;

    /// <summary>Runs the acceptor's side; returns the peer's identity, or throws <see cref="HandshakeException"/>.</summary>
    public static async Task<string> AcceptAsync(NetworkStream stream, string clusterId, byte[] secret, string identity, CancellationToken cancellationToken)
    {
        var nonce = RandomNumberGenerator.GetBytes(NonceLength);
        await WriteFrameAsync(stream, [.. s_magic, ProtocolVersion, .. nonce], cancellationToken).ConfigureAwait(false);

        var hello = await ReadFrameAsync(stream, cancellationToken).ConfigureAwait(false);
        if (hello.Length < 5 + NonceLength + 32 || !hello.AsSpan(0, 4).SequenceEqual(s_magic) || hello[4] != ProtocolVersion)
        {
            throw new HandshakeException("the peer does not speak this protocol version");
        }

        var peerNonce = hello.AsSpan(5, NonceLength).ToArray();
        var proof = hello.AsSpan(5 + NonceLength, 32).ToArray();
        var (peerCluster, peerIdentity) = ReadStrings(hello.AsSpan(5 + NonceLength + 32));
        if (peerCluster != clusterId)
        {
            await WriteFrameAsync(stream, [RejectedCluster], cancellationToken).ConfigureAwait(false);
            throw new HandshakeException($"peer {peerIdentity} belongs to cluster '{peerCluster}', not '{clusterId}'");
        }

        if (!CryptographicOperations.FixedTimeEquals(proof, Prove(secret, nonce, peerIdentity)))
        {
            await WriteFrameAsync(stream, [RejectedSecret], cancellationToken).ConfigureAwait(false);
            throw new HandshakeException($"peer {peerIdentity} did not prove the cluster secret");
        }

        await WriteFrameAsync(stream, [Accepted, .. Prove(secret, peerNonce, identity), .. Strings(clusterId, identity)], cancellationToken).ConfigureAwait(false);
        return peerIdentity;
    }

    /// <summary>Runs the connector's side; returns the acceptor's identity, or throws <see cref="HandshakeException"/>.</summary>
    public static async Task<string> ConnectAsync(NetworkStream stream, string clusterId, byte[] secret, string identity, CancellationToken cancellationToken)
    {
        var challenge = await ReadFrameAsync(stream, cancellationToken).ConfigureAwait(false);
        if (challenge.Length != 5 + NonceLength || !challenge.AsSpan(0, 4).SequenceEqual(s_magic) || challenge[4] != ProtocolVersion)
        {
            throw new HandshakeException("the peer does not speak this protocol version");
        }

        var nonce = RandomNumberGenerator.GetBytes(NonceLength);
        await WriteFrameAsync(stream, [.. s_magic, ProtocolVersion, .. nonce, .. Prove(secret, challenge.AsSpan(5).ToArray(), identity), .. Strings(clusterId, identity)], cancellationToken).ConfigureAwait(false);
        var answer = await ReadFrameAsync(stream, cancellationToken).ConfigureAwait(false);
        switch (answer[0])
        {
            case RejectedSecret:
                throw new HandshakeException("the cluster refused this connection: wrong cluster secret");
            case RejectedCluster:
                throw new HandshakeException($"the peer is not in cluster '{clusterId}'");
            case Accepted when answer.Length > 33:
                var (_, peerIdentity) = ReadStrings(answer.AsSpan(33));
                if (!CryptographicOperations.FixedTimeEquals(answer.AsSpan(1, 32), Prove(secret, nonce, peerIdentity)))
                {
                    throw new HandshakeException($"peer {peerIdentity} did not prove the cluster secret");
                }

                return peerIdentity;
            default:
                throw new HandshakeException("malformed handshake answer");
        }
    }

    private static byte[] Prove(byte[] secret, byte[] nonce, string identity)
    {
        byte[] message = [.. nonce, .. Encoding.UTF8.GetBytes(identity)];
        return HMACSHA256.HashData(secret, message);
    }

    private static byte[] Strings(string a, string b)
    {
        var first = Encoding.UTF8.GetBytes(a);
        var second = Encoding.UTF8.GetBytes(b);
        var result = new byte[4 + first.Length + second.Length];
        BinaryPrimitives.WriteInt32LittleEndian(result, first.Length);
        first.CopyTo(result, 4);
        second.CopyTo(result, 4 + first.Length);
        return result;
    }

    private static (string, string) ReadStrings(ReadOnlySpan<byte> data)
    {
        var length = BinaryPrimitives.ReadInt32LittleEndian(data);
        if (length < 0 || length > data.Length - 4)
        {
            throw new HandshakeException("malformed handshake");
        }

        return (Encoding.UTF8.GetString(data.Slice(4, length)), Encoding.UTF8.GetString(data[(4 + length)..]));
    }

    private static async Task WriteFrameAsync(NetworkStream stream, byte[] payload, CancellationToken cancellationToken)
    {
        var frame = new byte[2 + payload.Length];
        BinaryPrimitives.WriteUInt16LittleEndian(frame, (ushort)payload.Length);
        payload.CopyTo(frame, 2);
        await stream.WriteAsync(frame, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<byte[]> ReadFrameAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var header = new byte[2];
        await stream.ReadExactlyAsync(header, cancellationToken).ConfigureAwait(false);
        var payload = new byte[BinaryPrimitives.ReadUInt16LittleEndian(header)];
        if (payload.Length == 0)
        {
            throw new HandshakeException("empty handshake frame");
        }

        await stream.ReadExactlyAsync(payload, cancellationToken).ConfigureAwait(false);
        return payload;
    }
}

/// <summary>A peer that could not prove it belongs to the cluster.</summary>
public sealed class HandshakeException : Exception
{
    public HandshakeException(string message)
        : base(message)
    {
    }

    public HandshakeException()
    {
    }

    public HandshakeException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
