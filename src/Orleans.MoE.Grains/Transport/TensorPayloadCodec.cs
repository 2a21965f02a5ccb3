using System.Buffers;
using System.Runtime.InteropServices;
using Orleans.Serialization.Buffers;
using Orleans.Serialization.Cloning;
using Orleans.Serialization.Codecs;
using Orleans.Serialization.WireProtocol;

namespace Orleans.MoE.Grains.Transport;

/// <summary>
/// The wire form of a <see cref="TensorPayload"/>: one length-prefixed field holding rows and columns
/// (int32 each) and then the f32 values' bytes, read straight into a rented buffer.
/// </summary>
[RegisterSerializer]
public sealed class TensorPayloadCodec : IFieldCodec<TensorPayload>
{
    /// <summary>The largest payload accepted from the wire (a bound on what a peer can make us allocate).</summary>
    public const int MaxBytes = 1 << 30;

    public void WriteField<TBufferWriter>(ref Writer<TBufferWriter> writer, uint fieldIdDelta, Type? expectedType, TensorPayload? value)
        where TBufferWriter : IBufferWriter<byte>
    {
        if (ReferenceCodec.TryWriteReferenceField(ref writer, fieldIdDelta, expectedType, value))
        {
            return;
        }

        ArgumentNullException.ThrowIfNull(value);
        writer.WriteFieldHeader(fieldIdDelta, expectedType, typeof(TensorPayload), WireType.LengthPrefixed);
        var bytes = value.Bytes;
        writer.WriteVarUInt32((uint)(8 + bytes.Length));
        writer.WriteInt32(value.Rows);
        writer.WriteInt32(value.Columns);
        writer.Write(bytes);
    }

    public TensorPayload ReadValue<TInput>(ref Reader<TInput> reader, Field field)
    {
        if (field.WireType == WireType.Reference)
        {
            return ReferenceCodec.ReadReference<TensorPayload, TInput>(ref reader, field)!;
        }

        field.EnsureWireType(WireType.LengthPrefixed);
        var length = reader.ReadVarUInt32();
        var rows = reader.ReadInt32();
        var columns = reader.ReadInt32();
        if (rows < 0 || columns < 0 || length > MaxBytes || (long)rows * columns * sizeof(float) != length - 8)
        {
            throw new InvalidDataException($"a tensor payload of [{rows}, {columns}] f32 cannot be {length - 8} bytes (at most {MaxBytes})");
        }

        var payload = TensorPayload.Rent(rows, columns);
        reader.ReadBytes(MemoryMarshal.AsBytes(payload.Values));
        ReferenceCodec.RecordObject(reader.Session, payload);
        return payload;
    }
}

/// <summary>Payloads are immutable once sent: a copy is the payload itself.</summary>
[RegisterCopier]
public sealed class TensorPayloadCopier : IDeepCopier<TensorPayload>
{
    public TensorPayload? DeepCopy(TensorPayload? input, CopyContext context) => input;
}
