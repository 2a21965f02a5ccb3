using System.Buffers;

namespace Orleans.MoE.Runtime.Serialization;

/// <summary>
/// A buffer rented from the shared pool with a reference count: a received message's bytes stay
/// rented while any <see cref="TensorPayload"/> still points into them, and return to the pool when
/// the last holder releases.
/// </summary>
public sealed class PooledBuffer
{
    private byte[]? _array;
    private int _references = 1;
    private List<PooledBuffer>? _dependents;

    public PooledBuffer(int length)
    {
        _array = ArrayPool<byte>.Shared.Rent(Math.Max(1, length));
        Length = length;
    }

    public int Length { get; }

    public Memory<byte> Memory => (_array ?? throw new ObjectDisposedException(nameof(PooledBuffer))).AsMemory(0, Length);

    public void AddReference() => Interlocked.Increment(ref _references);

    public void Release()
    {
        if (Interlocked.Decrement(ref _references) == 0 && Interlocked.Exchange(ref _array, null) is { } array)
        {
            ArrayPool<byte>.Shared.Return(array);
            if (Interlocked.Exchange(ref _dependents, null) is { } dependents)
            {
                foreach (var dependent in dependents)
                {
                    dependent.Release();
                }
            }
        }
    }

    /// <summary>
    /// Keeps <paramref name="other"/> rented as long as this buffer is: a locally delivered message's
    /// copied header holds the tensor buffers its attachments point into.
    /// </summary>
    internal void KeepAlive(PooledBuffer other)
    {
        other.AddReference();
        lock (this)
        {
            (_dependents ??= []).Add(other);
        }
    }
}

/// <summary>
/// Bytes that belong to a message body but are not copied into it: a tensor's memory, sent from where it
/// lies straight to the socket (or handed to a local callee as is). <see cref="Position"/> is the offset
/// in the inline body where the bytes logically sit (right after their length prefix).
/// </summary>
internal readonly record struct BodyAttachment(int Position, ReadOnlyMemory<byte> Data, PooledBuffer? Owner);

/// <summary>
/// A growable writer over pooled arrays. Large byte runs (tensors) can be attached by reference instead
/// of copied (<see cref="Writer.WriteBytes(ReadOnlyMemory{byte}, PooledBuffer?)"/>); the writer holds a
/// reference on their pooled owners until it is disposed.
/// </summary>
public sealed class PooledBufferWriter : IBufferWriter<byte>, IDisposable
{
    private byte[] _buffer;
    private int _written;
    private List<BodyAttachment>? _attachments;
    private long _attachedBytes;

    public PooledBufferWriter(int initialCapacity = 256) => _buffer = ArrayPool<byte>.Shared.Rent(initialCapacity);

    public int WrittenCount => _written;

    /// <summary>Inline bytes plus attached ones: the body's length on the wire.</summary>
    public long TotalLength => _written + _attachedBytes;

    internal IReadOnlyList<BodyAttachment>? Attachments => _attachments;

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _written);

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _written);

    public void Advance(int count) => _written += count;

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_written);
    }

    /// <summary>Adds <paramref name="data"/> at the current position without copying it.</summary>
    internal void Attach(ReadOnlyMemory<byte> data, PooledBuffer? owner)
    {
        owner?.AddReference();
        (_attachments ??= []).Add(new BodyAttachment(_written, data, owner));
        _attachedBytes += data.Length;
    }

    public void Dispose()
    {
        if (_buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
        }

        _buffer = [];
        _written = 0;
        if (Interlocked.Exchange(ref _attachments, null) is { } attachments)
        {
            foreach (var attachment in attachments)
            {
                attachment.Owner?.Release();
            }
        }

        _attachedBytes = 0;
    }

    private void Ensure(int sizeHint)
    {
        var needed = _written + Math.Max(sizeHint, 1);
        if (needed <= _buffer.Length)
        {
            return;
        }

        var larger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, _buffer.Length * 2));
        _buffer.AsSpan(0, _written).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = larger;
    }
}
