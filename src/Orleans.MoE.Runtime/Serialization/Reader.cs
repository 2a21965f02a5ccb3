using System.Buffers.Binary;
using System.Text;

namespace Orleans.MoE.Runtime.Serialization;

/// <summary>Reads the wire format written by <see cref="Writer"/>; tensor payloads are slices of the owning buffer, not copies.</summary>
public struct Reader
{
    private readonly ReadOnlyMemory<byte> _memory;
    private readonly PooledBuffer? _owner;
    private readonly IReadOnlyList<BodyAttachment>? _attachments;
    private int _position;
    private int _nextAttachment;

    public Reader(ReadOnlyMemory<byte> memory, PooledBuffer? owner = null)
    {
        _memory = memory;
        _owner = owner;
    }

    /// <summary>A body delivered on the same silo: its large byte runs are the sender's attachments, not copies.</summary>
    internal Reader(ReadOnlyMemory<byte> memory, PooledBuffer? owner, IReadOnlyList<BodyAttachment>? attachments)
        : this(memory, owner)
    {
        _attachments = attachments is { Count: > 0 } ? attachments : null;
    }

    public readonly PooledBuffer? Owner => _owner;

    public readonly int Remaining => _memory.Length - _position;

    public byte ReadByte() => Take(1)[0];

    public bool ReadBool() => ReadByte() != 0;

    public int ReadInt32() => BinaryPrimitives.ReadInt32LittleEndian(Take(4));

    public long ReadInt64() => BinaryPrimitives.ReadInt64LittleEndian(Take(8));

    public ulong ReadUInt64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

    public double ReadDouble() => BitConverter.Int64BitsToDouble(ReadInt64());

    public float ReadSingle() => BitConverter.Int32BitsToSingle(ReadInt32());

    public uint ReadVarUInt()
    {
        uint result = 0;
        for (var shift = 0; shift < 35; shift += 7)
        {
            var b = ReadByte();
            result |= (uint)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return result;
            }
        }

        throw new SerializationException("malformed varint");
    }

    public string? ReadString()
    {
        var length = ReadVarUInt();
        return length == 0 ? null : Encoding.UTF8.GetString(Take(checked((int)length - 1)));
    }

    /// <summary>A length-prefixed byte run as a slice of the message (no copy).</summary>
    public ReadOnlyMemory<byte> ReadBytesSlice() => ReadBytesSlice(out _);

    /// <summary>A length-prefixed byte run (no copy) and the pooled buffer that holds it, if any.</summary>
    public ReadOnlyMemory<byte> ReadBytesSlice(out PooledBuffer? owner)
    {
        var length = checked((int)ReadVarUInt());
        if (_attachments is not null && _nextAttachment < _attachments.Count && _attachments[_nextAttachment].Position == _position)
        {
            var attachment = _attachments[_nextAttachment++];
            if (attachment.Data.Length != length)
            {
                throw new SerializationException($"attached byte run is {attachment.Data.Length} bytes, its prefix says {length}");
            }

            owner = attachment.Owner;
            return attachment.Data;
        }

        if (length > Remaining)
        {
            throw new SerializationException($"byte run of {length} exceeds the {Remaining} bytes left in the message");
        }

        var slice = _memory.Slice(_position, length);
        _position += length;
        owner = _owner;
        return slice;
    }

    public T Read<T>() => Codec<T>.Instance.Read(ref this);

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count < 0 || count > Remaining)
        {
            throw new SerializationException($"message ends {count - Remaining} bytes early");
        }

        var span = _memory.Span.Slice(_position, count);
        _position += count;
        return span;
    }
}

/// <summary>A message body that cannot be read as the method's arguments or result.</summary>
public sealed class SerializationException : Exception
{
    public SerializationException(string message)
        : base(message)
    {
    }

    public SerializationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public SerializationException()
    {
    }
}
