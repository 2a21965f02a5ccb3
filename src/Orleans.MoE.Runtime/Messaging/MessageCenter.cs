using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using Orleans.MoE.Runtime.Configuration;

namespace Orleans.MoE.Runtime.Messaging;

/// <summary>
/// The silo's network side: listens for silos and clients, authenticates them with the cluster
/// secret, keeps one connection per peer (when both sides connect at once, the connection opened by
/// the lower address wins and the other drains), and hands every received message to the runtime.
/// </summary>
internal sealed partial class MessageCenter : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Connection> _connections = new();
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _connecting = new();
    private readonly ClusterOptions _cluster;
    private readonly MessagingOptions _messaging;
    private readonly ILogger _logger;
    private readonly byte[] _secret;
    private readonly CancellationTokenSource _stopping = new();
    private Socket? _listener;
    private Func<Message, Connection, ValueTask>? _onMessage;
    private Action<Connection>? _onClosed;

    public MessageCenter(ClusterOptions cluster, MessagingOptions messaging, ILogger logger)
    {
        _cluster = cluster;
        _messaging = messaging;
        _logger = logger;
        _secret = Encoding.UTF8.GetBytes(cluster.ClusterSecret);
    }

    public string Identity { get; private set; } = "";

    /// <summary>Binds the listener; returns the port (useful when 0 asked for any).</summary>
    public int Bind(string host, int port)
    {
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        // A restarted silo binds its old port again while old connections linger in TIME_WAIT.
        _listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Bind(new IPEndPoint(IPAddress.Parse(host), port));
        _listener.Listen(512);
        return ((IPEndPoint)_listener.LocalEndPoint!).Port;
    }

    public void Start(string identity, Func<Message, Connection, ValueTask> onMessage, Action<Connection> onClosed)
    {
        Identity = identity;
        _onMessage = onMessage;
        _onClosed = onClosed;
        _ = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The connection to a silo, connecting (and authenticating) when there is none.</summary>
    public async ValueTask<Connection> GetConnectionAsync(SiloAddress silo, CancellationToken cancellationToken)
    {
        var key = silo.ToString();
        if (_connections.TryGetValue(key, out var existing) && !existing.IsClosed)
        {
            return existing;
        }

        var gate = _connecting.GetOrAdd(key, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_connections.TryGetValue(key, out existing) && !existing.IsClosed)
            {
                return existing;
            }

            var connection = await ConnectAsync(silo.EndPoint, cancellationToken).ConfigureAwait(false);
            if (connection.PeerIdentity != key)
            {
                connection.Abort();
                throw new ConnectionClosedException($"{silo.EndPoint} is now {connection.PeerIdentity}, not {key}");
            }

            return Register(connection);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>A connection to a client by its identity, when it is connected.</summary>
    public Connection? ClientConnection(string client) => _connections.TryGetValue(client, out var c) && !c.IsClosed ? c : null;

    /// <summary>Opens an authenticated connection to an endpoint (used by clients too).</summary>
    public async Task<Connection> ConnectAsync(IPEndPoint endPoint, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        timeout.CancelAfter(_messaging.ConnectTimeout);
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endPoint, timeout.Token).ConfigureAwait(false);
            var stream = new NetworkStream(socket, ownsSocket: true);
            var peer = await Handshake.ConnectAsync(stream, _cluster.ClusterId, _secret, Identity, timeout.Token).ConfigureAwait(false);
            var connection = new Connection(socket, stream, peer, initiator: true, _messaging.MaxMessageSize, _logger);
            connection.Start(_onMessage!, Closed);
            return connection;
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
        {
            socket.Dispose();
            throw new ConnectionClosedException(endPoint.ToString(), e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Closes every connection to the silo (it was declared dead).</summary>
    public void Disconnect(SiloAddress silo)
    {
        if (_connections.TryRemove(silo.ToString(), out var connection))
        {
            connection.Abort();
        }
    }

    /// <summary>Crash: drop all connections and stop listening, telling nobody.</summary>
    public void Abort()
    {
        _stopping.Cancel();
        _listener?.Close(0);
        foreach (var connection in _connections.Values)
        {
            connection.Abort();
        }

        _connections.Clear();
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        foreach (var connection in _connections.Values)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }

        _connections.Clear();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener!.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                return;
            }

            _ = Task.Run(() => AcceptAsync(socket));
        }
    }

    private async Task AcceptAsync(Socket socket)
    {
        socket.NoDelay = true;
        var stream = new NetworkStream(socket, ownsSocket: true);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            timeout.CancelAfter(_messaging.ConnectTimeout);
            var peer = await Handshake.AcceptAsync(stream, _cluster.ClusterId, _secret, Identity, timeout.Token).ConfigureAwait(false);
            var connection = new Connection(socket, stream, peer, initiator: false, _messaging.MaxMessageSize, _logger);
            Register(connection);
            connection.Start(_onMessage!, Closed);
        }
        catch (HandshakeException e)
        {
            LogRefused(_logger, socket.RemoteEndPoint?.ToString() ?? "?", e.Message);
            await stream.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or EndOfStreamException)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    private Connection Register(Connection connection)
    {
        var key = connection.PeerIdentity;
        while (true)
        {
            if (!_connections.TryGetValue(key, out var existing) || existing.IsClosed)
            {
                if (existing is null ? _connections.TryAdd(key, connection) : _connections.TryUpdate(key, connection, existing))
                {
                    return connection;
                }

                continue;
            }

            // Two connections to one peer: both sides keep the one opened by the lower identity.
            var mineOpenedNew = connection.Initiator;
            var newOpener = mineOpenedNew ? Identity : key;
            var oldOpener = existing.Initiator ? Identity : key;
            var keepNew = string.CompareOrdinal(newOpener, oldOpener) < 0;
            var (winner, loser) = keepNew ? (connection, existing) : (existing, connection);
            loser.Draining = true;
            if (keepNew && !_connections.TryUpdate(key, connection, existing))
            {
                continue;
            }

            return winner;
        }
    }

    private void Closed(Connection connection)
    {
        _connections.TryRemove(new KeyValuePair<string, Connection>(connection.PeerIdentity, connection));
        _onClosed?.Invoke(connection);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused a connection from {Remote}: {Reason}")]
    private static partial void LogRefused(ILogger logger, string remote, string reason);
}
