using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Orleans.MoE.Grains.Experts;

namespace Orleans.MoE.Grains.Transport;

/// <summary>
/// One connection to another silo's data channel, shared by every gate of this silo: requests are written
/// one after another and any number wait for their answers, which one reader matches by id. When the
/// connection breaks (the silo died, or membership declared it dead and <see cref="Close"/> was called),
/// every waiting call fails with a <see cref="DataChannelException"/>, which gates treat as transient.
/// </summary>
internal sealed class DataChannelConnection : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly string _peer;
    private readonly long _maxPayloadBytes;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ConcurrentDictionary<long, TaskCompletionSource<ExpertBatchResult>> _pending = new();
    private readonly CancellationTokenSource _closing = new();
    private readonly Task _reading;
    private long _nextId;
    private Exception? _closed;

    private DataChannelConnection(Socket socket, Stream stream, string peer, long maxPayloadBytes)
    {
        _socket = socket;
        _stream = stream;
        _peer = peer;
        _maxPayloadBytes = maxPayloadBytes;
        _reading = ReadAsync();
    }

    public bool IsClosed => Volatile.Read(ref _closed) is not null;

    public static async Task<DataChannelConnection> OpenAsync(IPEndPoint endpoint, string peer, DataChannelSecurity security, TimeSpan timeout, long maxPayloadBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(security);
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var opening = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        opening.CancelAfter(timeout);
        try
        {
            await socket.ConnectAsync(endpoint, opening.Token).ConfigureAwait(false);
            var stream = await security.AuthenticateAsClientAsync(new NetworkStream(socket, ownsSocket: false), opening.Token).ConfigureAwait(false);
            await stream.WriteAsync(DataChannelProtocol.Hello.ToArray(), opening.Token).ConfigureAwait(false);
            await stream.FlushAsync(opening.Token).ConfigureAwait(false);
            return new DataChannelConnection(socket, stream, peer, maxPayloadBytes);
        }
        catch (Exception e) when (e is SocketException or IOException or System.Security.Authentication.AuthenticationException
            || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            socket.Dispose();
            throw new DataChannelException($"the data channel of silo {peer} ({endpoint}) could not be opened: {e.Message}", e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Sends <paramref name="batch"/> (the caller keeps and disposes it) and waits for its result, at most
    /// <paramref name="timeout"/>. The caller's span (<see cref="Activity.Current"/>), if any, travels with it:
    /// the server's span joins that trace.
    /// </summary>
    public async Task<ExpertBatchResult> ExecuteAsync(ExpertBatch batch, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var id = Interlocked.Increment(ref _nextId);
        var answer = new TaskCompletionSource<ExpertBatchResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = answer;
        try
        {
            if (Volatile.Read(ref _closed) is { } closed)
            {
                throw Broken(closed);
            }

            // Not cancellable once started: half a frame would break the connection for every other call.
            await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await DataChannelProtocol.WriteRequestAsync(_stream, id, batch, Activity.Current?.Context ?? default, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                Close(e);
                throw Broken(e);
            }
            finally
            {
                _writeLock.Release();
            }

            return await answer.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"silo {_peer} did not answer an expert batch within {timeout}");
        }
        finally
        {
            if (_pending.TryRemove(id, out var unanswered))
            {
                // Given up on (timed out, cancelled): a late answer is dropped, its rows returned to the pool.
                _ = unanswered.Task.ContinueWith(t => t.Result.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
            }
        }
    }

    /// <summary>Breaks the connection: calls waiting on it fail (their silo is gone).</summary>
    public void Close(Exception reason)
    {
        if (Interlocked.CompareExchange(ref _closed, reason, null) is null)
        {
            _closing.Cancel();
            _socket.Dispose();
            foreach (var id in _pending.Keys)
            {
                if (_pending.TryRemove(id, out var waiting))
                {
                    waiting.TrySetException(Broken(reason));
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        Close(new ObjectDisposedException(nameof(DataChannelConnection)));
        await _reading.ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
        _closing.Dispose();
    }

    private DataChannelException Broken(Exception reason) =>
        reason as DataChannelException ?? new DataChannelException($"the data channel to silo {_peer} broke: {reason.Message}", reason);

    private async Task ReadAsync()
    {
        var scratch = new byte[4096];
        var reader = DataChannelProtocol.ReadBuffered(_stream);
        try
        {
            while (true)
            {
                var (id, result, error) = await DataChannelProtocol.ReadResponseAsync(reader, scratch, _maxPayloadBytes, _closing.Token).ConfigureAwait(false);
                if (!_pending.TryRemove(id, out var waiting))
                {
                    result?.Dispose(); // Its caller gave up.
                }
                else if (error is not null)
                {
                    waiting.TrySetException(new RemoteExpertException($"silo {_peer}: {error}"));
                }
                else if (!waiting.TrySetResult(result!))
                {
                    result!.Dispose();
                }
            }
        }
        catch (Exception e)
        {
            Close(e is EndOfStreamException ? new DataChannelException($"silo {_peer} closed its data channel") : e);
        }
    }
}
