using System.Buffers;
using System.Runtime.InteropServices;

namespace Orleans.MoE.Grains.Transport;

/// <summary>
/// Rows of f32 activations [rows, columns] as they travel between grains. The values live in a buffer
/// rented from the shared pool (<see cref="Rent"/>) or in a caller's array (<see cref="Over"/>);
/// <see cref="TensorPayloadCodec"/> writes them to the wire as raw bytes and reads them into a rented
/// buffer. Immutable to Orleans: a call within one silo passes the instance itself, never a copy. Its
/// holder disposes it once done (disposing twice is harmless), returning a rented buffer to the pool.
/// </summary>
[Immutable]
public sealed class TensorPayload : IDisposable
{
    private readonly float[] _values;
    private readonly int _offset;
    private readonly bool _rented;
    private int _disposed;

    private TensorPayload(float[] values, int offset, int rows, int columns, bool rented)
    {
        _values = values;
        _offset = offset;
        _rented = rented;
        Rows = rows;
        Columns = columns;
    }

    public int Rows { get; }

    public int Columns { get; }

    /// <summary>The values, row after row (<see cref="Rows"/> × <see cref="Columns"/>).</summary>
    public Span<float> Values => _values.AsSpan(_offset, Rows * Columns);

    /// <summary>The values as bytes (what goes on the wire).</summary>
    public ReadOnlySpan<byte> Bytes => MemoryMarshal.AsBytes<float>(Values);

    /// <summary>The values as bytes for asynchronous socket reads and writes (the data channel).</summary>
    internal Memory<byte> ByteMemory => new FloatBytes(_values).Memory.Slice(_offset * sizeof(float), Rows * Columns * sizeof(float));

    /// <summary>A payload of [<paramref name="rows"/>, <paramref name="columns"/>] in a rented buffer (contents undefined until written).</summary>
    public static TensorPayload Rent(int rows, int columns)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(columns);
        return new TensorPayload(ArrayPool<float>.Shared.Rent(checked(rows * columns)), 0, rows, columns, rented: true);
    }

    /// <summary>A payload over <paramref name="values"/> from <paramref name="offset"/> (which must not change until the call completes).</summary>
    public static TensorPayload Over(float[] values, int offset, int rows, int columns)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(checked(offset + (rows * columns)), values.Length, nameof(rows));
        return new TensorPayload(values, offset, rows, columns, rented: false);
    }

    public void Dispose()
    {
        if (_rented && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            ArrayPool<float>.Shared.Return(_values);
        }
    }

    public override string ToString() => $"[{Rows}, {Columns}] f32";
}

/// <summary>A float array seen as bytes, as a <see cref="Memory{T}"/> (managed memory: nothing to pin for spans).</summary>
internal sealed class FloatBytes(float[] values) : MemoryManager<byte>
{
    public override Span<byte> GetSpan() => MemoryMarshal.AsBytes(values.AsSpan());

    public override MemoryHandle Pin(int elementIndex = 0)
    {
        var handle = GCHandle.Alloc(values, GCHandleType.Pinned);
        unsafe
        {
            return new MemoryHandle((byte*)handle.AddrOfPinnedObject() + elementIndex, handle);
        }
    }

    public override void Unpin()
    {
    }

    protected override void Dispose(bool disposing)
    {
    }
}
