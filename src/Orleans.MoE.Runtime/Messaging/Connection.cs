using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Orleans.MoE.Runtime.Serialization;

namespace Orleans.MoE.Runtime.Messaging;

/// <summary>
/// One authenticated TCP connection carrying framed messages both ways (System.IO.Pipelines).
/// Sends are serialised by one writer lock and flushed with the pipe's backpressure; a frame above the
/// maximum size is refused before it is sent, and an incoming one is skipped and answered with
/// <see cref="ResponseStatus.TooLarge"/> by id, so only that call fails and the connection stays up.
/// </summary>
internal sealed partial class Connection : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private const int DirectBodyThreshold = 64 * 1024;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly int _maxMessageSize;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _closed = new();
    private Func<Message, Connection, ValueTask>? _onMessage;
    private Action<Connection>? _onClosed;
    private int _disposed;

    public Connection(Socket socket, NetworkStream stream, string peerIdentity, bool initiator, int maxMessageSize, ILogger logger)
    {
        _socket = socket;
        _stream = stream;
        PeerIdentity = peerIdentity;
        Initiator = initiator;
        _maxMessageSize = maxMessageSize;
        _logger = logger;
        _reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024));
        _writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 64 * 1024));
        PeerSilo = peerIdentity.StartsWith("client:", StringComparison.Ordinal) ? null : SiloAddress.Parse(peerIdentity);
    }

    /// <summary>The peer's silo address, or "client:..." for a client.</summary>
    public string PeerIdentity { get; }

    public SiloAddress? PeerSilo { get; }

    /// <summary>Whether this side opened the connection.</summary>
    public bool Initiator { get; }

    /// <summary>Set when a second connection to the same peer won: no new sends go here.</summary>
    public bool Draining { get; set; }

    public bool IsClosed => _closed.IsCancellationRequested;

    public void Start(Func<Message, Connection, ValueTask> onMessage, Action<Connection> onClosed)
    {
        _onMessage = onMessage;
        _onClosed = onClosed;
        _ = Task.Run(ReceiveLoopAsync);
    }

    /// <summary>Frames and sends a message; throws <see cref="MessageTooLargeException"/> without sending when it is too large.</summary>
    public async ValueTask SendAsync(Message message, CancellationToken cancellationToken = default)
    {
        // Large bodies (tensors) go from their buffers to the socket directly, not through the frame and
        // pipe buffers: the header and small inline parts are buffered, each large run is written as is.
        var bodyLength = message.BodyLength;
        var direct = bodyLength >= DirectBodyThreshold;
        using var frame = new PooledBufferWriter(MessageFrame.PrefixLength + (direct ? 0 : (int)bodyLength) + 256);
        MessageFrame.Write(message, frame, includeBody: !direct);
        var size = frame.WrittenCount + (direct ? bodyLength : 0);
        if (size > _maxMessageSize)
        {
            throw new MessageTooLargeException(size, _maxMessageSize);
        }

        // The caller may give up while waiting for its turn, but once a frame has begun it is written
        // whole: a frame cut short would corrupt the stream for every call that shares the connection.
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(IsClosed, this);
            if (!direct)
            {
                await _writer.WriteAsync(frame.WrittenMemory, CancellationToken.None).ConfigureAwait(false);
            }
            else
            {
                _writer.Write(frame.WrittenSpan);
                var segments = new List<ReadOnlyMemory<byte>>(3);
                MessageFrame.ForEachBodySegment(message, segments, static (segment, list) => list.Add(segment));
                foreach (var segment in segments)
                {
                    if (segment.Length < DirectBodyThreshold)
                    {
                        _writer.Write(segment.Span);
                        continue;
                    }

                    await _writer.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                    await _stream.WriteAsync(segment, CancellationToken.None).ConfigureAwait(false);
                }

                await _writer.FlushAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or InvalidOperationException)
        {
            await DisposeAsync().ConfigureAwait(false);
            throw new ConnectionClosedException(PeerIdentity, e);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Drops the connection at once (a crash, as the peer sees it).</summary>
    public void Abort()
    {
        try
        {
            _socket.Close(0);
        }
        catch (SocketException)
        {
        }

        _ = DisposeAsync().AsTask();
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _closed.CancelAsync().ConfigureAwait(false);
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }

        _socket.Dispose();
        await _stream.DisposeAsync().ConfigureAwait(false);
        _onClosed?.Invoke(this);
    }

    private async Task ReceiveLoopAsync()
    {
        long skipping = 0;
        try
        {
            while (!IsClosed)
            {
                var result = await _reader.ReadAsync(_closed.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                var advanced = false;
                while (true)
                {
                    if (skipping > 0)
                    {
                        var skip = Math.Min(skipping, buffer.Length);
                        buffer = buffer.Slice(skip);
                        skipping -= skip;
                        if (skipping > 0)
                        {
                            break;
                        }
                    }

                    if (buffer.Length < MessageFrame.PrefixLength)
                    {
                        break;
                    }

                    var (length, version, kind, id) = MessageFrame.ReadPrefix(buffer);
                    if (version != MessageFrame.Version || length < MessageFrame.PrefixLength - 4)
                    {
                        LogBadFrame(_logger, PeerIdentity, version);
                        await DisposeAsync().ConfigureAwait(false);
                        return;
                    }

                    var total = (long)length + 4;
                    if (total > _maxMessageSize)
                    {
                        LogOversized(_logger, PeerIdentity, total, _maxMessageSize);
                        skipping = total;
                        if (kind is MessageKind.Request)
                        {
                            _ = SendTooLargeAsync(id);
                        }

                        continue;
                    }

                    if (buffer.Length < total && total < DirectBodyThreshold)
                    {
                        break;
                    }

                    var owner = new PooledBuffer((int)total);
                    if (buffer.Length < total)
                    {
                        // A large frame (a tensor): take what the pipe holds, then read the rest from the
                        // socket straight into the frame's buffer, past the pipe's own buffers.
                        var have = (int)buffer.Length;
                        buffer.CopyTo(owner.Memory.Span);
                        _reader.AdvanceTo(buffer.End);
                        try
                        {
                            await _stream.ReadExactlyAsync(owner.Memory[have..], _closed.Token).ConfigureAwait(false);
                        }
                        catch
                        {
                            owner.Release();
                            throw;
                        }

                        await DispatchAsync(owner).ConfigureAwait(false);
                        advanced = true;
                        break;
                    }

                    buffer.Slice(0, total).CopyTo(owner.Memory.Span);
                    buffer = buffer.Slice(total);
                    await DispatchAsync(owner).ConfigureAwait(false);
                }

                if (!advanced)
                {
                    _reader.AdvanceTo(buffer.Start, buffer.End);
                }

                if (result.IsCompleted && !advanced)
                {
                    break;
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            await DisposeAsync().ConfigureAwait(false);
        }
    }

    private async ValueTask DispatchAsync(PooledBuffer owner)
    {
        Message message;
        try
        {
            message = MessageFrame.Read(owner);
        }
        catch (Exception e) when (e is SerializationException or FormatException)
        {
            owner.Release();
            LogMalformed(_logger, PeerIdentity, e.Message);
            return;
        }

        await _onMessage!(message, this).ConfigureAwait(false);
    }

    private async Task SendTooLargeAsync(long id)
    {
        try
        {
            await SendAsync(new Message { Id = id, Kind = MessageKind.Response, Status = ResponseStatus.TooLarge }).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ConnectionClosedException or ObjectDisposedException)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Dropping the connection to {Peer}: frame version {Version} is not understood")]
    private static partial void LogBadFrame(ILogger logger, string peer, byte version);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A {Size}-byte message from {Peer} exceeds the {Max}-byte limit; it fails alone")]
    private static partial void LogOversized(ILogger logger, string peer, long size, int max);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A malformed message from {Peer} was dropped: {Reason}")]
    private static partial void LogMalformed(ILogger logger, string peer, string reason);
}

/// <summary>A message larger than <see cref="Configuration.MessagingOptions.MaxMessageSize"/>; only its call fails.</summary>
public sealed class MessageTooLargeException : Exception
{
    public MessageTooLargeException(long size, long limit)
        : base($"the message is {size} bytes, over the {limit}-byte limit (MessagingOptions.MaxMessageSize)")
    {
    }

    public MessageTooLargeException()
    {
    }

    public MessageTooLargeException(string message)
        : base(message)
    {
    }

    public MessageTooLargeException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The connection to a peer broke while a message was being sent or awaited.</summary>
public sealed class ConnectionClosedException : Exception
{
    public ConnectionClosedException(string peer, Exception? innerException = null)
        : base($"the connection to {peer} is closed", innerException)
    {
    }

    public ConnectionClosedException()
    {
    }

    public ConnectionClosedException(string message)
        : base(message)
    {
    }
}
