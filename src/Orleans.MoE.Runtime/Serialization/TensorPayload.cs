namespace Orleans.MoE.Runtime.Serialization;

/// <summary>
/// Raw tensor bytes for a grain call, never serialized element by element. A large payload is not
/// copied into the message: its bytes go from where they lie to the socket, and arrive as a slice of
/// the pooled buffer the receiver read the frame into; on the same silo the callee gets the caller's
/// memory itself. The bytes must therefore not change once the payload has been passed to a call.
/// A received payload keeps its pooled buffer rented until disposed. <see cref="Rent"/> makes a payload
/// over a pooled buffer to fill and send without allocating. A payload returned from a grain method is
/// handed over to the runtime, which releases it once it is on its way.
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

    /// <summary>
    /// A payload of <paramref name="shape"/> over a buffer rented from the shared pool (contents
    /// undefined): fill it through <see cref="GetWritableBytes"/> or <see cref="GetWritableSingles"/>
    /// before passing it to a call, dispose it after (the pool gets the buffer back once every message
    /// and receiver holding it has let go).
    /// </summary>
    public static TensorPayload Rent(TensorElementType dtype, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        long elements = 1;
        foreach (var dimension in shape)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(dimension, nameof(shape));
            elements *= dimension;
        }

        var bytes = checked((int)(elements * ElementSize(dtype)));
        var owner = new PooledBuffer(bytes);
        return new TensorPayload(owner.Memory, shape, dtype) { _owner = owner, _writable = owner.Memory };
    }

    private Memory<byte> _writable;

    /// <summary>The bytes of a rented payload, to fill before it is sent.</summary>
    public Span<byte> GetWritableBytes() =>
        _writable.IsEmpty && Bytes.Length > 0 ? throw new InvalidOperationException("only a rented payload (TensorPayload.Rent) is writable") : _writable.Span;

    /// <summary>The f32 values of a rented payload, to fill before it is sent.</summary>
    public Span<float> GetWritableSingles() => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(GetWritableBytes());

    /// <summary>Bytes per element of <paramref name="dtype"/>.</summary>
    public static int ElementSize(TensorElementType dtype) => dtype switch
    {
        TensorElementType.F32 => 4,
        TensorElementType.BF16 or TensorElementType.F16 => 2,
        TensorElementType.I64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown tensor element type"),
    };

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
