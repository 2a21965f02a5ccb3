using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.MoE.Grains.Diagnostics;
using Orleans.MoE.Grains.Experts;

namespace Orleans.MoE.Grains.Transport;

/// <summary>
/// This silo's end of the data channel: a TCP listener that takes expert batches from other silos' gates
/// and answers with the experts' rows, computed by <see cref="IExpertBatchExecutor"/> (the experts hosted
/// here). One connection carries many requests at once; each runs on the thread pool as it arrives and
/// its answer is written as soon as it is ready. A peer that fails TLS, does not open with the
/// protocol's hello or sends a frame out of bounds loses its connection; the silo carries on. A traced
/// request (its frame carries the sender's span) runs in a span of that trace, tagged with this silo.
/// </summary>
public sealed partial class DataChannelServer(
    IExpertBatchExecutor executor, DataChannelSecurity security, IOptions<MeshOptions> options, ILogger<DataChannelServer> logger, ILocalSiloDetails? silo = null)
    : IAsyncDisposable
{
    private static readonly TimeSpan HelloTimeout = TimeSpan.FromSeconds(10);
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Socket, byte> _connections = new();
    private Socket? _listener;
    private Task _accepting = Task.CompletedTask;
    private int _disposed;

    /// <summary>Where other silos reach this one's data channel (null until started).</summary>
    public IPEndPoint? Endpoint { get; private set; }

    /// <summary>Listens on <paramref name="address"/> at the configured port (0: any free one); <paramref name="advertised"/> is the address peers use.</summary>
    public void Start(IPAddress address, IPAddress advertised)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentNullException.ThrowIfNull(advertised);
        var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(new IPEndPoint(address, options.Value.DataChannel.Port));
            listener.Listen(128);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new InvalidOperationException($"the data channel cannot listen on {address}:{options.Value.DataChannel.Port} ({e.Message}); set Mesh:DataChannel:Port to a free port", e);
        }

        _listener = listener;
        Endpoint = new IPEndPoint(advertised, ((IPEndPoint)listener.LocalEndPoint!).Port);
        _accepting = AcceptAsync(listener);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        foreach (var connection in _connections.Keys)
        {
            connection.Dispose();
        }

        await _accepting.ConfigureAwait(false);
        _stopping.Dispose();
    }

    private async Task AcceptAsync(Socket listener)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            socket.NoDelay = true;
            _connections[socket] = 0;
            _ = ServeAsync(socket);
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        var peer = socket.RemoteEndPoint?.ToString() ?? "?";
        var writeLock = new SemaphoreSlim(1, 1);
        try
        {
            var stream = await OpenAsync(socket).ConfigureAwait(false);
            await using var streamScope = stream.ConfigureAwait(false);
            var scratch = new byte[4096];
            var maxPayload = options.Value.DataChannel.MaxPayloadBytes;
            var reader = DataChannelProtocol.ReadBuffered(stream);
            while (await DataChannelProtocol.ReadRequestAsync(reader, scratch, maxPayload, _stopping.Token).ConfigureAwait(false) is { } request)
            {
                _ = Task.Run(() => AnswerAsync(stream, writeLock, request.Id, request.Batch, request.Trace));
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or SocketException or OperationCanceledException or ObjectDisposedException
            or System.Security.Authentication.AuthenticationException)
        {
            if (!_stopping.IsCancellationRequested)
            {
                LogConnectionDropped(logger, peer, e.Message);
            }
        }
        finally
        {
            _connections.TryRemove(socket, out _);
            socket.Dispose();
        }
    }

    /// <summary>The connection's stream once TLS (if any) is through and the peer has said hello.</summary>
    private async Task<Stream> OpenAsync(Socket socket)
    {
        using var handshake = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        handshake.CancelAfter(HelloTimeout);
        var stream = await security.AuthenticateAsServerAsync(new NetworkStream(socket, ownsSocket: false), handshake.Token).ConfigureAwait(false);
        var hello = new byte[DataChannelProtocol.Hello.Length];
        await stream.ReadExactlyAsync(hello, handshake.Token).ConfigureAwait(false);
        if (!hello.AsSpan().SequenceEqual(DataChannelProtocol.Hello))
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw new InvalidDataException("the peer did not open with the data channel's hello");
        }

        return stream;
    }

    private async Task AnswerAsync(Stream stream, SemaphoreSlim writeLock, long id, ExpertBatch batch, ActivityContext trace)
    {
        ExpertBatchResult? result = null;
        string? error = null;
        using var span = trace == default ? null : MeshTelemetry.Source.StartActivity("moe.experts.execute", ActivityKind.Server, trace);
        span?.SetTag("moe.silo", silo?.SiloAddress.ToString()).SetTag("gen_ai.request.model", batch.Model).SetTag("moe.layer", batch.Layer)
            .SetTag("moe.experts", string.Join(",", batch.Slots.Select(s => s.Expert))).SetTag("moe.tokens", batch.Rows.Rows)
            .SetTag("moe.bytes", (long)batch.Rows.Rows * batch.Rows.Columns * sizeof(float));
        try
        {
            using (batch)
            {
                result = await executor.ExecuteAsync(batch).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            error = $"{e.GetType().Name}: {e.Message}";
            span?.SetStatus(ActivityStatusCode.Error, error);
        }

        using (result)
        {
            await writeLock.WaitAsync().ConfigureAwait(false);
            try
            {
                if (result is not null)
                {
                    await DataChannelProtocol.WriteResultAsync(stream, id, result, CancellationToken.None).ConfigureAwait(false);
                }
                else
                {
                    await DataChannelProtocol.WriteErrorAsync(stream, id, error!, CancellationToken.None).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                // The peer is gone; its reader has failed the call already.
            }
            finally
            {
                writeLock.Release();
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Data channel connection from {Peer} dropped: {Reason}")]
    private static partial void LogConnectionDropped(ILogger logger, string peer, string reason);
}
