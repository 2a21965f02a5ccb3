namespace Orleans.MoE.Runtime.Serialization;

/// <summary>
/// Raw tensor bytes for a grain call, never serialized element by element. A large payload is not
/// copied into the message: its bytes go from where they lie to the socket, and arrive as a slice of
/// the pooled buffer the receiver read the frame into; on the same silo the callee gets the caller's
/// memory itself. The bytes must therefore not change once the payload has been passed to a call.
/// A received payload keeps its pooled buffer rented until disposed.
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

    /// <summary>The pooled buffer <see cref="Bytes"/> lies in (a received payload), or null.</summary>
    internal PooledBuffer? Owner => Volatile.Read(ref _owner);

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

        writer.WriteBytes(value.Bytes, value.Owner);
    }

    public TensorPayload Read(ref Reader reader)
    {
        var dtype = (TensorElementType)reader.ReadByte();
        var shape = new int[reader.ReadVarUInt()];
        for (var i = 0; i < shape.Length; i++)
        {
            shape[i] = reader.ReadInt32();
        }

        var bytes = reader.ReadBytesSlice(out var owner);
        return new TensorPayload(bytes, shape, dtype, owner);
    }
}
