namespace Orleans.MoE.Runtime.Serialization;

/// <summary>
/// Raw tensor bytes for a grain call: written into the message with one copy and read back as a slice
/// of the received buffer, never element by element. A received payload keeps its pooled buffer alive
/// until disposed (or collected).
/// </summary>
public sealed class TensorPayload : IDisposable
{
    private PooledBuffer? _owner;

    public TensorPayload(ReadOnlyMemory<byte> bytes, int[] shape, TensorElementType dtype = TensorElementType.F32)
    {
        Bytes = bytes;
        Shape = shape ?? throw new ArgumentNullException(nameof(shape));
        DType = dtype;
    }

    internal TensorPayload(ReadOnlyMemory<byte> bytes, int[] shape, TensorElementType dtype, PooledBuffer? owner)
        : this(bytes, shape, dtype)
    {
        _owner = owner;
        owner?.AddReference();
    }

    public ReadOnlyMemory<byte> Bytes { get; }

    public int[] Shape { get; }

    public TensorElementType DType { get; }

    /// <summary>f32 values as a span over the bytes (no copy).</summary>
    public ReadOnlySpan<float> AsSingles() => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(Bytes.Span);

    /// <summary>A payload of f32 values (copied once, here, into a fresh array).</summary>
    public static TensorPayload FromSingles(ReadOnlySpan<float> values, params int[] shape) =>
        new(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values).ToArray(), shape);

    public void Dispose() => Interlocked.Exchange(ref _owner, null)?.Release();
}

internal sealed class TensorPayloadCodec : ICodec<TensorPayload>
{
    public void Write(Writer writer, TensorPayload value)
    {
        writer.WriteByte((byte)value.DType);
        writer.WriteVarUInt((uint)value.Shape.Length);
        foreach (var dimension in value.Shape)
        {
            writer.WriteInt32(dimension);
        }

        writer.WriteBytes(value.Bytes.Span);
    }

    public TensorPayload Read(ref Reader reader)
    {
        var dtype = (TensorElementType)reader.ReadByte();
        var shape = new int[reader.ReadVarUInt()];
        for (var i = 0; i < shape.Length; i++)
        {
            shape[i] = reader.ReadInt32();
        }

        return new TensorPayload(reader.ReadBytesSlice(), shape, dtype, reader.Owner);
    }
}
