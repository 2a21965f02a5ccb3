using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans.MoE.Runtime.Configuration;
using Orleans.MoE.Runtime.Membership;
using Orleans.MoE.Runtime.Messaging;
using Orleans.MoE.Runtime.Serialization;

namespace Orleans.MoE.Runtime.Client;

/// <summary>How a client finds and joins the cluster.</summary>
public sealed class ClusterClientOptions
{
    public string ClusterId { get; set; } = ClusterOptions.DEFAULT_CLUSTER_ID;

    public string ClusterSecret { get; set; } = "";

    /// <summary>Gateways to try (silo endpoints); used when no membership table is given.</summary>
    public List<IPEndPoint> Gateways { get; set; } = [];

    /// <summary>Finds gateways among the active silos of the membership table.</summary>
    public IMembershipTable? MembershipTable { get; set; }

    public TimeSpan ResponseTimeout { get; set; } = MessagingOptions.DEFAULT_RESPONSE_TIMEOUT;

    public int MaxMessageSize { get; set; } = MessagingOptions.DEFAULT_MAX_MESSAGE_SIZE;

    public ILogger Logger { get; set; } = NullLogger.Instance;

    /// <summary>The clock for call deadlines and retry pauses.</summary>
    public TimeProvider Time { get; set; } = TimeProvider.System;
}

/// <summary>
/// An external client (the front end uses one): connects to a gateway silo with the cluster secret and
/// sends grain calls through it; when the gateway goes away, new calls go through another one.
/// </summary>
public sealed class ClusterClient : IGrainCallSink, IAsyncDisposable
{
    private readonly ClusterClientOptions _options;
    private readonly ConcurrentDictionary<long, TaskCompletionSource<Message>> _pending = new();
    private readonly SemaphoreSlim _connecting = new(1, 1);
    private readonly string _identity = "client:" + Guid.NewGuid().ToString("N");
    private Connection? _gateway;
    private long _nextId;

    public ClusterClient(ClusterClientOptions options)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        GrainFactory = new GrainFactory(this);
    }

    public IGrainFactory GrainFactory { get; }

    /// <summary>The gateway in use.</summary>
    public string? Gateway => _gateway?.PeerIdentity;

    public async Task ConnectAsync(CancellationToken cancellationToken = default) => await GatewayAsync(cancellationToken).ConfigureAwait(false);

    public Task InvokeAsync(GrainReference target, GrainMethodInfo method, PooledBufferWriter body, CancellationToken cancellationToken) =>
        InvokeCoreAsync<bool>(target, method, body, hasResult: false, cancellationToken);

    public Task<TResult> InvokeAsync<TResult>(GrainReference target, GrainMethodInfo method, PooledBufferWriter body, CancellationToken cancellationToken) =>
        InvokeCoreAsync<TResult>(target, method, body, hasResult: true, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (_gateway is { } gateway)
        {
            await gateway.DisposeAsync().ConfigureAwait(false);
        }

        _connecting.Dispose();
    }

    private async Task<TResult> InvokeCoreAsync<TResult>(GrainReference target, GrainMethodInfo method, PooledBufferWriter body, bool hasResult, CancellationToken cancellationToken)
    {
        var timeout = method.Timeout ?? _options.ResponseTimeout;
        var time = _options.Time;
        var deadline = time.GetUtcNow() + timeout;
        try
        {
            for (var attempt = 0; ; attempt++)
            {
                var message = new Message
                {
                    Id = Interlocked.Increment(ref _nextId),
                    Kind = method.OneWay ? MessageKind.OneWayRequest : MessageKind.Request,
                    Target = target.GrainId,
                    Interface = target.Interface.Name,
                    MethodId = method.Id,
                    Deadline = deadline.UtcTicks,
                }.WithBody(body);
                var completion = new TaskCompletionSource<Message>(TaskCreationOptions.RunContinuationsAsynchronously);
                _pending[message.Id] = completion;
                var sent = false;
                try
                {
                    var gateway = await GatewayAsync(cancellationToken).ConfigureAwait(false);
                    await gateway.SendAsync(message, cancellationToken).ConfigureAwait(false);
                    sent = true;
                    if (method.OneWay)
                    {
                        return default!;
                    }

                    using var timer = new CancellationTokenSource(TimeSpan.FromTicks(Math.Max(0, (deadline - time.GetUtcNow()).Ticks)), time);
                    using var linked = CancellationTokenSource.CreateLinkedTokenSource(timer.Token, cancellationToken);
                    await using (linked.Token.Register(() =>
                    {
                        completion.TrySetException(cancellationToken.IsCancellationRequested
                            ? new OperationCanceledException(cancellationToken)
                            : new TimeoutException($"{target.Interface.Name}.{method.Name} on {target.GrainId} did not answer within {timeout}"));
                        _ = gateway.SendAsync(new Message { Id = message.Id, Kind = MessageKind.Cancel, Target = message.Target, Interface = message.Interface }).AsTask().ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
                    }).ConfigureAwait(false))
                    {
                        var response = await completion.Task.ConfigureAwait(false);
                        try
                        {
                            if (CallOutcome.FailureOf(response, target, method) is { } failure)
                            {
                                throw failure;
                            }

                            if (response.Status == ResponseStatus.Ok)
                            {
                                if (!hasResult)
                                {
                                    return default!;
                                }

                                var reader = new Reader(response.Body, response.BodyOwner);
                                return reader.Read<TResult>();
                            }
                        }
                        finally
                        {
                            response.BodyOwner?.Release();
                        }
                    }
                }
                catch (ConnectionClosedException) when (!sent && time.GetUtcNow() < deadline)
                {
                    // The gateway went away before the call left: try another one.
                }
                finally
                {
                    _pending.TryRemove(message.Id, out _);
                }

                // Rejected by a gateway that is shutting down, or not sent: another gateway, after a pause.
                await DropGatewayAsync().ConfigureAwait(false);
                await Task.Delay(CallOutcome.RetryDelay(attempt), time, cancellationToken).ConfigureAwait(false);
                if (time.GetUtcNow() >= deadline)
                {
                    throw new TimeoutException($"{target.Interface.Name}.{method.Name}: no gateway took the call within {timeout}");
                }
            }
        }
        finally
        {
            body.Dispose();
        }
    }

    private async Task<Connection> GatewayAsync(CancellationToken cancellationToken)
    {
        if (_gateway is { IsClosed: false } current)
        {
            return current;
        }

        await _connecting.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_gateway is { IsClosed: false } again)
            {
                return again;
            }

            var candidates = await CandidatesAsync(cancellationToken).ConfigureAwait(false);
            Exception? last = null;
            foreach (var endPoint in candidates.OrderBy(_ => Random.Shared.Next()))
            {
                try
                {
                    _gateway = await ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
                    return _gateway;
                }
                catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or HandshakeException)
                {
                    last = e;
                    if (e is HandshakeException)
                    {
                        throw;
                    }
                }
            }

            throw new ConnectionClosedException("no gateway could be reached", last);
        }
        finally
        {
            _connecting.Release();
        }
    }

    private async Task DropGatewayAsync()
    {
        if (Interlocked.Exchange(ref _gateway, null) is { } gateway && gateway.IsClosed)
        {
            await gateway.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task<List<IPEndPoint>> CandidatesAsync(CancellationToken cancellationToken)
    {
        if (_options.MembershipTable is { } table)
        {
            var snapshot = await table.ReadAllAsync(cancellationToken).ConfigureAwait(false);
            return snapshot.Entries.Where(e => e.Entry.Status == SiloStatus.Active).Select(e => e.Entry.Silo.EndPoint).ToList();
        }

        return _options.Gateways;
    }

    private async Task<Connection> ConnectAsync(IPEndPoint endPoint, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
            var stream = new NetworkStream(socket, ownsSocket: true);
            var peer = await Handshake.ConnectAsync(stream, _options.ClusterId, Encoding.UTF8.GetBytes(_options.ClusterSecret), _identity, cancellationToken).ConfigureAwait(false);
            var connection = new Connection(socket, stream, peer, initiator: true, _options.MaxMessageSize, _options.Logger);
            connection.Start(OnMessageAsync, OnClosed);
            return connection;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private ValueTask OnMessageAsync(Message message, Connection connection)
    {
        if (message.Kind == MessageKind.Response && _pending.TryGetValue(message.Id, out var completion) && completion.TrySetResult(message))
        {
            return ValueTask.CompletedTask;
        }

        message.BodyOwner?.Release();
        return ValueTask.CompletedTask;
    }

    private void OnClosed(Connection connection)
    {
        foreach (var completion in _pending.Values)
        {
            completion.TrySetException(new SiloUnavailableException($"gateway {connection.PeerIdentity} closed the connection while a call was in flight"));
        }
    }
}
