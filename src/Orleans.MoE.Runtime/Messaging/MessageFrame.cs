using System.Buffers;
using System.Buffers.Binary;
using Orleans.MoE.Runtime.Serialization;

namespace Orleans.MoE.Runtime.Messaging;

/// <summary>
/// The wire frame: [u32 length][u8 version][u8 kind][u8 status][u8 hops][i64 id] then the header
/// fields and the body. The fixed prefix lets a receiver answer an oversized frame by id without
/// reading it.
/// </summary>
internal static class MessageFrame
{
    public const byte Version = 1;

    /// <summary>Length prefix plus the fixed header.</summary>
    public const int PrefixLength = 4 + 4 + 8;

    public static void Write(Message message, PooledBufferWriter buffer) => Write(message, buffer, includeBody: true);

    /// <summary>
    /// Writes the frame; without the body when <paramref name="includeBody"/> is false (the length fields
    /// still count it, and the caller sends the body bytes right after, straight from their buffer).
    /// </summary>
    public static void Write(Message message, PooledBufferWriter buffer, bool includeBody)
    {
        var start = buffer.WrittenCount;
        var prefix = buffer.GetSpan(PrefixLength);
        prefix[4] = Version;
        prefix[5] = (byte)message.Kind;
        prefix[6] = (byte)message.Status;
        prefix[7] = message.Hops;
        BinaryPrimitives.WriteInt64LittleEndian(prefix[8..], message.Id);
        buffer.Advance(PrefixLength);
        var writer = new Writer(buffer);
        writer.WriteInt64(message.Deadline);
        writer.WriteString(message.Sender?.ToString());
        writer.WriteString(message.TargetSilo?.ToString());
        writer.WriteString(message.Target.Type);
        writer.WriteString(message.Target.Key);
        writer.WriteString(message.Interface);
        writer.WriteInt32(message.MethodId);
        writer.WriteString(message.Client);
        writer.WriteVarUInt((uint)message.CallChain.Count);
        foreach (var link in message.CallChain)
        {
            writer.WriteString(link);
        }

        var bodyLength = message.BodyLength;
        writer.WriteVarUInt(checked((uint)bodyLength));
        long length;
        if (includeBody)
        {
            ForEachBodySegment(message, buffer, static (segment, buffer) =>
            {
                segment.Span.CopyTo(buffer.GetSpan(segment.Length));
                buffer.Advance(segment.Length);
            });
            length = buffer.WrittenCount - start - 4;
        }
        else
        {
            length = buffer.WrittenCount - start - 4 + bodyLength;
        }

        BinaryPrimitives.WriteInt32LittleEndian(GetWritten(buffer, start), (int)Math.Min(length, int.MaxValue));
    }

    /// <summary>The body in wire order: inline bytes interleaved with the attachments at their positions.</summary>
    public static void ForEachBodySegment<TState>(Message message, TState state, Action<ReadOnlyMemory<byte>, TState> action)
    {
        var inline = 0;
        if (message.Attachments is { } attachments)
        {
            foreach (var attachment in attachments)
            {
                action(message.Body[inline..attachment.Position], state);
                action(attachment.Data, state);
                inline = attachment.Position;
            }
        }

        action(message.Body[inline..], state);
    }

    /// <summary>Reads the fixed prefix: (frame length after the length field, version, kind, id).</summary>
    public static (int Length, byte Version, MessageKind Kind, long Id) ReadPrefix(ReadOnlySequence<byte> sequence)
    {
        Span<byte> prefix = stackalloc byte[PrefixLength];
        sequence.Slice(0, PrefixLength).CopyTo(prefix);
        return (BinaryPrimitives.ReadInt32LittleEndian(prefix), prefix[4], (MessageKind)prefix[5], BinaryPrimitives.ReadInt64LittleEndian(prefix[8..]));
    }

    /// <summary>Decodes a whole frame held in <paramref name="owner"/>; the body stays a slice of it.</summary>
    public static Message Read(PooledBuffer owner)
    {
        var memory = owner.Memory;
        var span = memory.Span;
        var message = new Message
        {
            Kind = (MessageKind)span[5],
            Status = (ResponseStatus)span[6],
            Hops = span[7],
            Id = BinaryPrimitives.ReadInt64LittleEndian(span[8..]),
        };
        var reader = new Reader(memory[PrefixLength..], owner);
        message.Deadline = reader.ReadInt64();
        message.Sender = reader.ReadString() is { } sender ? ParseSilo(sender) : null;
        message.TargetSilo = reader.ReadString() is { } targetSilo ? ParseSilo(targetSilo) : null;
        message.Target = new GrainId(reader.ReadString() ?? "", reader.ReadString() ?? "");
        message.Interface = reader.ReadString() ?? "";
        message.MethodId = reader.ReadInt32();
        message.Client = reader.ReadString();
        var links = reader.ReadVarUInt();
        var chain = new string[Math.Min(links, 64)];
        for (var i = 0; i < chain.Length; i++)
        {
            chain[i] = reader.ReadString() ?? "";
        }

        message.CallChain = chain;
        message.Body = reader.ReadBytesSlice();
        message.BodyOwner = owner;
        return message;
    }

    /// <summary>Silo addresses repeat in every message: parse each once.</summary>
    private static SiloAddress ParseSilo(string text)
    {
        if (s_silos.TryGetValue(text, out var silo))
        {
            return silo;
        }

        silo = SiloAddress.Parse(text);
        if (s_silos.Count < 4096)
        {
            s_silos[text] = silo;
        }

        return silo;
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, SiloAddress> s_silos = new(StringComparer.Ordinal);

    private static Span<byte> GetWritten(PooledBufferWriter buffer, int start) =>
        System.Runtime.InteropServices.MemoryMarshal.AsMemory(buffer.WrittenMemory).Span.Slice(start, 4);
}
