using System.Buffers.Binary;
using System.Text;

namespace Orleans.MoE.Runtime.Serialization;

/// <summary>Reads the wire format written by <see cref="Writer"/>; tensor payloads are slices of the owning buffer, not copies.</summary>
public struct Reader(ReadOnlyMemory<byte> memory, PooledBuffer? owner = null)
{
    private int _position;

    public readonly PooledBuffer? Owner => owner;

    public readonly int Remaining => memory.Length - _position;

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
    public ReadOnlyMemory<byte> ReadBytesSlice()
    {
        var length = checked((int)ReadVarUInt());
        if (length > Remaining)
        {
            throw new SerializationException($"byte run of {length} exceeds the {Remaining} bytes left in the message");
        }

        var slice = memory.Slice(_position, length);
        _position += length;
        return slice;
    }

    public T Read<T>() => Codec<T>.Instance.Read(ref this);

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count < 0 || count > Remaining)
        {
            throw new SerializationException($"message ends {count - Remaining} bytes early");
        }

        var span = memory.Span.Slice(_position, count);
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
