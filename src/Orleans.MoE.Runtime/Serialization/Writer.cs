using System.Buffers.Binary;
using System.Text;

namespace Orleans.MoE.Runtime.Serialization;

/// <summary>Writes values in the wire format: little-endian fixed-size numbers, varint lengths, UTF-8 strings.</summary>
public readonly struct Writer(PooledBufferWriter buffer)
{
    public PooledBufferWriter Buffer => buffer;

    public void WriteByte(byte value)
    {
        buffer.GetSpan(1)[0] = value;
        buffer.Advance(1);
    }

    public void WriteBool(bool value) => WriteByte(value ? (byte)1 : (byte)0);

    public void WriteInt32(int value)
    {
        BinaryPrimitives.WriteInt32LittleEndian(buffer.GetSpan(4), value);
        buffer.Advance(4);
    }

    public void WriteInt64(long value)
    {
        BinaryPrimitives.WriteInt64LittleEndian(buffer.GetSpan(8), value);
        buffer.Advance(8);
    }

    public void WriteUInt64(ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(buffer.GetSpan(8), value);
        buffer.Advance(8);
    }

    public void WriteDouble(double value) => WriteInt64(BitConverter.DoubleToInt64Bits(value));

    public void WriteSingle(float value) => WriteInt32(BitConverter.SingleToInt32Bits(value));

    /// <summary>An unsigned LEB128 varint.</summary>
    public void WriteVarUInt(uint value)
    {
        var span = buffer.GetSpan(5);
        var i = 0;
        while (value >= 0x80)
        {
            span[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        span[i++] = (byte)value;
        buffer.Advance(i);
    }

    /// <summary>A length-prefixed UTF-8 string; null is length 0 with a marker.</summary>
    public void WriteString(string? value)
    {
        if (value is null)
        {
            WriteVarUInt(0);
            return;
        }

        var length = Encoding.UTF8.GetByteCount(value);
        WriteVarUInt((uint)length + 1);
        Encoding.UTF8.GetBytes(value, buffer.GetSpan(length));
        buffer.Advance(length);
    }

    /// <summary>Raw bytes with a length prefix; one copy into the message buffer.</summary>
    public void WriteBytes(ReadOnlySpan<byte> value)
    {
        WriteVarUInt((uint)value.Length);
        value.CopyTo(buffer.GetSpan(value.Length));
        buffer.Advance(value.Length);
    }

    /// <summary>Byte runs at least this long are attached by reference rather than copied.</summary>
    public const int AttachThreshold = 16 * 1024;

    /// <summary>
    /// Raw bytes with a length prefix, in the same wire format as <see cref="WriteBytes(ReadOnlySpan{byte})"/>;
    /// a large run is not copied but attached: it goes from <paramref name="value"/> to the socket (or, on
    /// the same silo, to the callee) as is. The bytes must not change until the call completes.
    /// </summary>
    public void WriteBytes(ReadOnlyMemory<byte> value, PooledBuffer? owner)
    {
        if (value.Length < AttachThreshold)
        {
            WriteBytes(value.Span);
            return;
        }

        WriteVarUInt((uint)value.Length);
        buffer.Attach(value, owner);
    }

    public void Write<T>(T value) => Codec<T>.Instance.Write(this, value);

    /// <summary>
    /// Writes a grain method's result. A returned <see cref="TensorPayload"/> is handed over to the runtime:
    /// it is released here (the message keeps its bytes alive until they are sent or delivered).
    /// </summary>
    public void WriteResult<T>(T value)
    {
        Write(value);
        if (value is TensorPayload payload)
        {
            payload.Dispose();
        }
    }
}
