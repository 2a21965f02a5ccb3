using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Orleans.MoE.Grains.Experts;

namespace Orleans.MoE.Grains.Transport;

/// <summary>
/// The data channel's wire format (little-endian). A client opens a connection (TLS first, when the mesh
/// uses it) with the 8 bytes <see cref="Hello"/>, then sends requests and reads responses, several in
/// flight, matched by id:
/// <list type="bullet">
/// <item>request: id (i64), layer (i32), rows (i32), columns (i32), model name length (u16), slot count
/// (u16), the sender's trace context as W3C <c>traceparent</c> fields (trace id: 16 bytes, span id: 8
/// bytes, trace flags: u8; all zero when the batch is not traced); the model name (UTF-8); per slot
/// expert, replica, rows (i32 each); the rows' f32 values.</item>
/// <item>response: id (i64), status (u8: 0 rows, 1 error), compute µs (i64), count (i32: missing slots,
/// or the error message's bytes), rows (i32), columns (i32); the missing slot indices (i32 each) or the
/// message (UTF-8); the f32 values.</item>
/// </list>
/// Every length is checked against a bound before anything is allocated: a peer that sends more, or
/// bytes that are not this protocol, loses its connection and nothing else.
/// </summary>
internal static class DataChannelProtocol
{
    public const int RequestHeaderBytes = 49;
    public const int ResponseHeaderBytes = 29;
    public const int MaxModelNameBytes = 1024;
    public const int MaxErrorBytes = 16 * 1024;
    public const int MaxColumns = 1 << 20;

    /// <summary>Bytes sent in one write with their header instead of after it (one segment for small batches).</summary>
    private const int CoalesceBytes = 64 * 1024;

    private const byte StatusRows = 0;
    private const byte StatusError = 1;

    /// <summary>Where the fixed header carries the trace context.</summary>
    private const int TraceAt = 24;

    /// <summary>The protocol's version 2 (version 1 had no trace context).</summary>
    public static ReadOnlySpan<byte> Hello => "MOEDATA2"u8;

    /// <summary>
    /// A reader over <paramref name="stream"/>'s incoming bytes that takes a small frame (header, slots and
    /// rows) in one receive instead of three; large payloads are read straight into their buffers. Only
    /// for reading: the connection's writers write to <paramref name="stream"/> itself, concurrently.
    /// </summary>
    public static Stream ReadBuffered(Stream stream) => new BufferedStream(stream, CoalesceBytes);

    /// <summary>Writes <paramref name="batch"/> as request <paramref name="id"/>, with <paramref name="trace"/> (default: none) for the server's span.</summary>
    public static async Task WriteRequestAsync(Stream stream, long id, ExpertBatch batch, ActivityContext trace, CancellationToken cancellationToken)
    {
        var model = Encoding.UTF8.GetBytes(batch.Model);
        if (model.Length > MaxModelNameBytes || batch.Slots.Length > ushort.MaxValue)
        {
            throw new ArgumentException($"a batch for model '{batch.Model}' with {batch.Slots.Length} slots does not fit the data channel's limits", nameof(batch));
        }

        var headerBytes = RequestHeaderBytes + model.Length + (batch.Slots.Length * 12);
        await WriteFrameAsync(stream, headerBytes, header =>
        {
            BinaryPrimitives.WriteInt64LittleEndian(header, id);
            BinaryPrimitives.WriteInt32LittleEndian(header[8..], batch.Layer);
            BinaryPrimitives.WriteInt32LittleEndian(header[12..], batch.Rows.Rows);
            BinaryPrimitives.WriteInt32LittleEndian(header[16..], batch.Rows.Columns);
            BinaryPrimitives.WriteUInt16LittleEndian(header[20..], (ushort)model.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(header[22..], (ushort)batch.Slots.Length);
            WriteTrace(header[TraceAt..], trace);
            model.CopyTo(header[RequestHeaderBytes..]);
            var at = RequestHeaderBytes + model.Length;
            foreach (var slot in batch.Slots)
            {
                BinaryPrimitives.WriteInt32LittleEndian(header[at..], slot.Expert);
                BinaryPrimitives.WriteInt32LittleEndian(header[(at + 4)..], slot.Replica);
                BinaryPrimitives.WriteInt32LittleEndian(header[(at + 8)..], slot.Count);
                at += 12;
            }
        }, batch.Rows, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The next request with the sender's trace context (default when untraced), or null when the peer closed the connection between requests.</summary>
    public static async Task<(long Id, ExpertBatch Batch, ActivityContext Trace)?> ReadRequestAsync(Stream stream, byte[] scratch, long maxPayloadBytes, CancellationToken cancellationToken)
    {
        if (!await ReadOrEndAsync(stream, scratch.AsMemory(0, RequestHeaderBytes), cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        var id = BinaryPrimitives.ReadInt64LittleEndian(scratch);
        var layer = BinaryPrimitives.ReadInt32LittleEndian(scratch.AsSpan(8));
        var rows = BinaryPrimitives.ReadInt32LittleEndian(scratch.AsSpan(12));
        var columns = BinaryPrimitives.ReadInt32LittleEndian(scratch.AsSpan(16));
        int modelBytes = BinaryPrimitives.ReadUInt16LittleEndian(scratch.AsSpan(20));
        int slotCount = BinaryPrimitives.ReadUInt16LittleEndian(scratch.AsSpan(22));
        var trace = ReadTrace(scratch.AsSpan(TraceAt));
        CheckShape(rows, columns, maxPayloadBytes);
        if (modelBytes > MaxModelNameBytes)
        {
            throw new InvalidDataException($"a model name of {modelBytes} bytes (at most {MaxModelNameBytes})");
        }

        var rest = modelBytes + (slotCount * 12);
        var variable = rest <= scratch.Length ? scratch : new byte[rest];
        await stream.ReadExactlyAsync(variable.AsMemory(0, rest), cancellationToken).ConfigureAwait(false);
        var model = Encoding.UTF8.GetString(variable, 0, modelBytes);
        var slots = new ExpertSlot[slotCount];
        for (var i = 0; i < slotCount; i++)
        {
            var at = modelBytes + (i * 12);
            slots[i] = new ExpertSlot(
                BinaryPrimitives.ReadInt32LittleEndian(variable.AsSpan(at)),
                BinaryPrimitives.ReadInt32LittleEndian(variable.AsSpan(at + 4)),
                BinaryPrimitives.ReadInt32LittleEndian(variable.AsSpan(at + 8)));
        }

        var payload = await ReadPayloadAsync(stream, rows, columns, cancellationToken).ConfigureAwait(false);
        return (id, new ExpertBatch(model, layer, slots, payload), trace);
    }

    public static Task WriteResultAsync(Stream stream, long id, ExpertBatchResult result, CancellationToken cancellationToken) =>
        WriteFrameAsync(stream, ResponseHeaderBytes + (result.Missing.Length * 4), header =>
        {
            WriteResponseHeader(header, id, StatusRows, result.ComputeMicroseconds, result.Missing.Length, result.Rows.Rows, result.Rows.Columns);
            for (var i = 0; i < result.Missing.Length; i++)
            {
                BinaryPrimitives.WriteInt32LittleEndian(header[(ResponseHeaderBytes + (i * 4))..], result.Missing[i]);
            }
        }, result.Rows, cancellationToken);

    public static Task WriteErrorAsync(Stream stream, long id, string message, CancellationToken cancellationToken)
    {
        var text = Encoding.UTF8.GetBytes(message);
        var length = Math.Min(text.Length, MaxErrorBytes);
        return WriteFrameAsync(stream, ResponseHeaderBytes + length, header =>
        {
            WriteResponseHeader(header, id, StatusError, 0, length, 0, 0);
            text.AsSpan(0, length).CopyTo(header[ResponseHeaderBytes..]);
        }, null, cancellationToken);
    }

    /// <summary>The next response: its id, and its result or the error its server reported.</summary>
    public static async Task<(long Id, ExpertBatchResult? Result, string? Error)> ReadResponseAsync(Stream stream, byte[] scratch, long maxPayloadBytes, CancellationToken cancellationToken)
    {
        await stream.ReadExactlyAsync(scratch.AsMemory(0, ResponseHeaderBytes), cancellationToken).ConfigureAwait(false);
        var id = BinaryPrimitives.ReadInt64LittleEndian(scratch);
        var status = scratch[8];
        var compute = BinaryPrimitives.ReadInt64LittleEndian(scratch.AsSpan(9));
        var count = BinaryPrimitives.ReadInt32LittleEndian(scratch.AsSpan(17));
        var rows = BinaryPrimitives.ReadInt32LittleEndian(scratch.AsSpan(21));
        var columns = BinaryPrimitives.ReadInt32LittleEndian(scratch.AsSpan(25));
        if (status == StatusError)
        {
            if (count is < 0 or > MaxErrorBytes)
            {
                throw new InvalidDataException($"an error message of {count} bytes (at most {MaxErrorBytes})");
            }

            var text = new byte[count];
            await stream.ReadExactlyAsync(text, cancellationToken).ConfigureAwait(false);
            return (id, null, Encoding.UTF8.GetString(text));
        }

        if (status != StatusRows || count is < 0 or > ushort.MaxValue)
        {
            throw new InvalidDataException($"a response with status {status} and {count} missing slots");
        }

        CheckShape(rows, columns, maxPayloadBytes);
        var indices = count * 4 <= scratch.Length ? scratch : new byte[count * 4];
        await stream.ReadExactlyAsync(indices.AsMemory(0, count * 4), cancellationToken).ConfigureAwait(false);
        var missing = new int[count];
        for (var i = 0; i < count; i++)
        {
            missing[i] = BinaryPrimitives.ReadInt32LittleEndian(indices.AsSpan(i * 4));
        }

        var payload = await ReadPayloadAsync(stream, rows, columns, cancellationToken).ConfigureAwait(false);
        return (id, new ExpertBatchResult(payload, missing, compute), null);
    }

    private static void WriteTrace(Span<byte> field, ActivityContext trace)
    {
        if (trace == default)
        {
            field[..25].Clear();
            return;
        }

        trace.TraceId.CopyTo(field[..16]); // CopyTo fills its whole destination
        trace.SpanId.CopyTo(field[16..24]);
        field[24] = (byte)trace.TraceFlags;
    }

    private static ActivityContext ReadTrace(ReadOnlySpan<byte> field) =>
        field[..16].IndexOfAnyExcept((byte)0) < 0
            ? default
            : new ActivityContext(ActivityTraceId.CreateFromBytes(field[..16]), ActivitySpanId.CreateFromBytes(field[16..24]), (ActivityTraceFlags)(field[24] & 1), isRemote: true);

    private static void WriteResponseHeader(Span<byte> header, long id, byte status, long compute, int count, int rows, int columns)
    {
        BinaryPrimitives.WriteInt64LittleEndian(header, id);
        header[8] = status;
        BinaryPrimitives.WriteInt64LittleEndian(header[9..], compute);
        BinaryPrimitives.WriteInt32LittleEndian(header[17..], count);
        BinaryPrimitives.WriteInt32LittleEndian(header[21..], rows);
        BinaryPrimitives.WriteInt32LittleEndian(header[25..], columns);
    }

    private static void CheckShape(int rows, int columns, long maxPayloadBytes)
    {
        if (rows < 0 || columns < 0 || columns > MaxColumns || (long)rows * columns * sizeof(float) > maxPayloadBytes)
        {
            throw new InvalidDataException($"a payload of [{rows}, {columns}] f32 (at most {maxPayloadBytes} bytes and {MaxColumns} columns)");
        }
    }

    private static async Task<TensorPayload> ReadPayloadAsync(Stream stream, int rows, int columns, CancellationToken cancellationToken)
    {
        var payload = TensorPayload.Rent(rows, columns);
        try
        {
            await stream.ReadExactlyAsync(payload.ByteMemory, cancellationToken).ConfigureAwait(false);
            return payload;
        }
        catch
        {
            payload.Dispose();
            throw;
        }
    }

    /// <summary>Writes a header (and the payload's bytes after it, in the same write when small).</summary>
    private static async Task WriteFrameAsync(Stream stream, int headerBytes, SpanAction header, TensorPayload? payload, CancellationToken cancellationToken)
    {
        var payloadBytes = payload is null ? 0 : payload.Rows * payload.Columns * sizeof(float);
        var together = payloadBytes <= CoalesceBytes;
        var buffer = ArrayPool<byte>.Shared.Rent(headerBytes + (together ? payloadBytes : 0));
        try
        {
            header(buffer.AsSpan(0, headerBytes));
            if (together && payload is not null)
            {
                payload.Bytes.CopyTo(buffer.AsSpan(headerBytes));
                await stream.WriteAsync(buffer.AsMemory(0, headerBytes + payloadBytes), cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await stream.WriteAsync(buffer.AsMemory(0, headerBytes), cancellationToken).ConfigureAwait(false);
                if (payload is not null)
                {
                    await stream.WriteAsync(payload.ByteMemory, cancellationToken).ConfigureAwait(false);
                }
            }

            await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Reads exactly <paramref name="buffer"/>'s length; false when the stream ended before its first byte.</summary>
    private static async Task<bool> ReadOrEndAsync(Stream stream, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var first = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (first == 0)
        {
            return false;
        }

        await stream.ReadExactlyAsync(buffer[first..], cancellationToken).ConfigureAwait(false);
        return true;
    }

    private delegate void SpanAction(Span<byte> header);
}
