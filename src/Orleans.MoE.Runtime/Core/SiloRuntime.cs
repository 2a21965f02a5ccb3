using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.MoE.Runtime.Configuration;
using Orleans.MoE.Runtime.Directory;
using Orleans.MoE.Runtime.Membership;
using Orleans.MoE.Runtime.Messaging;
using Orleans.MoE.Runtime.Placement;
using Orleans.MoE.Runtime.Serialization;

namespace Orleans.MoE.Runtime;

/// <summary>
/// One silo's runtime: sends grain calls (routing through the directory and placement, local calls
/// without the network), receives messages, and owns the catalog, directory partition and membership.
/// </summary>
internal sealed partial class SiloRuntime : IGrainCallSink, IAsyncDisposable
{
    private readonly ConcurrentDictionary<long, PendingCall> _pending = new();
    private readonly ConcurrentDictionary<string, (IGrainInvoker Invoker, object Target)> _systemTargets = new();
    private readonly ConcurrentDictionary<(string Client, long Id), SiloAddress> _clientRequests = new();
    private readonly IReadOnlyList<IOutgoingGrainCallFilter> _outgoingFilters;
    private readonly ILogger _logger;
    private long _nextMessageId;
    private volatile bool _accepting;
    private volatile bool _stopped;

    public SiloRuntime(IServiceProvider services, IOptions<ClusterOptions> cluster, IOptions<SiloOptions> silo, IOptions<MessagingOptions> messaging,
        IOptions<ClusterMembershipOptions> membership, IOptions<GrainCollectionOptions> collection, TimeProvider time, ILoggerFactory loggers)
    {
        Services = services;
        Time = time;
        SiloOptions = silo.Value;
        MessagingOptions = messaging.Value;
        CollectionOptions = collection.Value;
        _logger = loggers.CreateLogger<SiloRuntime>();
        MessageCenter = new MessageCenter(cluster.Value, messaging.Value, loggers.CreateLogger<MessageCenter>());
        var port = MessageCenter.Bind(silo.Value.Host, silo.Value.Port);
        SiloAddress = new SiloAddress(silo.Value.Host, port, time.GetUtcNow().UtcTicks);
        GrainFactory = new GrainFactory(this);
        _outgoingFilters = services.GetServices<IOutgoingGrainCallFilter>().ToList();
        Catalog = new Catalog(this, services, loggers.CreateLogger<Catalog>());
        Dispatcher = new Dispatcher(this, services.GetServices<IIncomingGrainCallFilter>().ToList(), loggers.CreateLogger<Dispatcher>());
        Membership = new MembershipService(this, services.GetRequiredService<IMembershipTable>(), membership.Value, loggers.CreateLogger<MembershipService>());
        Directory = new GrainDirectory(this, loggers.CreateLogger<GrainDirectory>());
        Placement = new PlacementService(this, services);
        AddSystemTarget<IDirectoryPartition>(Directory.Partition);
        AddSystemTarget<ISiloControl>(new SiloControl(this));
    }

    public IServiceProvider Services { get; }
    public TimeProvider Time { get; }
    public SiloAddress SiloAddress { get; }
    public SiloOptions SiloOptions { get; }
    public MessagingOptions MessagingOptions { get; }
    public GrainCollectionOptions CollectionOptions { get; }
    public GrainFactory GrainFactory { get; }
    public Catalog Catalog { get; }
    public Dispatcher Dispatcher { get; }
    public GrainDirectory Directory { get; }
    public PlacementService Placement { get; }
    public MembershipService Membership { get; }
    public MessageCenter MessageCenter { get; }

    /// <summary>Whether the silo takes requests (false before start, while stopping, and once declared dead).</summary>
    public bool IsAccepting => _accepting;

    /// <summary>Whether the silo halted (crashed or was declared dead).</summary>
    public bool IsHalted => _stopped;

    public void Start()
    {
        MessageCenter.Start(SiloAddress.ToString(), OnMessageAsync, OnConnectionClosed);
        _accepting = true;
    }

    /// <summary>Stops taking requests (graceful shutdown begins).</summary>
    public void StopAccepting() => _accepting = false;

    /// <summary>This silo was declared dead or crashed: refuse everything, drop activations, close connections.</summary>
    public void Halt()
    {
        _accepting = false;
        _stopped = true;
        Catalog.DropAll();
        MessageCenter.Abort();
        foreach (var call in _pending.Values)
        {
            call.Fail(new SiloUnavailableException(SiloAddress, "this silo stopped"));
        }
    }

    public void AddSystemTarget<TTarget>(object target)
        where TTarget : ISystemTarget =>
        _systemTargets[GrainTypeRegistry.Interface(typeof(TTarget)).Invoker.Info.Name] = (GrainTypeRegistry.Interface(typeof(TTarget)).Invoker, target);

    public Task InvokeAsync(GrainReference target, GrainMethodInfo method, PooledBufferWriter body, CancellationToken cancellationToken) =>
        InvokeAsync<Unit>(target, method, body, hasResult: false, cancellationToken);

    public Task<TResult> InvokeAsync<TResult>(GrainReference target, GrainMethodInfo method, PooledBufferWriter body, CancellationToken cancellationToken) =>
        InvokeAsync<TResult>(target, method, body, hasResult: true, cancellationToken);

    private async Task<TResult> InvokeAsync<TResult>(GrainReference target, GrainMethodInfo method, PooledBufferWriter body, bool hasResult, CancellationToken cancellationToken)
    {
        TResult result = default!;
        await CallFilters.Run(_outgoingFilters, target.GrainId, target.Interface, method, async () =>
        {
            var response = await CallAsync(target, method, body, cancellationToken).ConfigureAwait(false);
            if (response is not null && hasResult)
            {
                try
                {
                    var reader = response.CreateReader();
                    result = reader.Read<TResult>();
                }
                finally
                {
                    response.BodyOwner?.Release();
                }
            }
            else
            {
                response?.BodyOwner?.Release();
            }
        }).ConfigureAwait(false);
        return result;
    }

    /// <summary>Sends a request and waits for its response (null for one-way calls); retries routing while the target silo is unreachable.</summary>
    private async Task<Message?> CallAsync(GrainReference target, GrainMethodInfo method, PooledBufferWriter body, CancellationToken cancellationToken)
    {
        var timeout = method.Timeout ?? MessagingOptions.ResponseTimeout;
        var deadline = Time.GetUtcNow() + timeout;
        var current = RuntimeContext.CurrentActivation;
        var chain = RuntimeContext.CallChain;
        if (current is not null)
        {
            chain = [.. chain, current.GrainId.ToString()];
        }

        try
        {
            for (var attempt = 0; ; attempt++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var message = new Message
                {
                    Id = Interlocked.Increment(ref _nextMessageId),
                    Kind = method.OneWay ? MessageKind.OneWayRequest : MessageKind.Request,
                    Sender = SiloAddress,
                    TargetSilo = target.TargetSilo,
                    Target = target.GrainId,
                    Interface = target.Interface.Name,
                    MethodId = method.Id,
                    Deadline = deadline.UtcTicks,
                    CallChain = chain,
                }.WithBody(body);

                if (method.OneWay)
                {
                    await RouteAsync(message).ConfigureAwait(false);
                    return null;
                }

                var call = new PendingCall(message.Id);
                _pending[message.Id] = call;
                try
                {
                    using var timer = new CancellationTokenSource(Remaining(deadline), Time);
                    // Link the caller's token only when it can fire (most calls pass none).
                    using var linked = cancellationToken.CanBeCanceled ? CancellationTokenSource.CreateLinkedTokenSource(timer.Token, cancellationToken) : null;
                    await using var registration = (linked?.Token ?? timer.Token).Register(() =>
                    {
                        if (cancellationToken.IsCancellationRequested)
                        {
                            call.Fail(new OperationCanceledException(cancellationToken));
                        }
                        else
                        {
                            call.Fail(new TimeoutException($"{target.Interface.Name}.{method.Name} on {target.GrainId} did not answer within {timeout}"));
                        }

                        if (call.Silo is { } silo)
                        {
                            _ = SendCancelAsync(message, silo);
                        }
                    }).ConfigureAwait(false);

                    // The call is tied to its silo before it leaves, so a failure of that silo always reaches it.
                    message.TargetSilo ??= await ResolveAsync(message.Target).ConfigureAwait(false);
                    call.Silo = message.TargetSilo;
                    try
                    {
                        await SendAsync(message).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is ConnectionClosedException or SiloUnavailableException)
                    {
                        call.Silo = null;
                        throw;
                    }

                    var response = await call.Task.ConfigureAwait(false);
                    if (CallOutcome.FailureOf(response, target, method) is { } failure)
                    {
                        response.BodyOwner?.Release();
                        throw failure;
                    }

                    switch (response.Status)
                    {
                        case ResponseStatus.Ok:
                            return response;
                        case ResponseStatus.SenderDeclaredDead:
                            LogToldDeclaredDead(_logger, call.Silo!);
                            await Membership.RefreshAsync().ConfigureAwait(false);
                            throw new SiloUnavailableException(SiloAddress, $"the cluster declared this silo dead ({call.Silo} refused the call)");
                        default:
                            // Rejected: the silo cannot take requests; re-route after its directory entries are gone.
                            if (target.TargetSilo is { } fixedSilo)
                            {
                                throw new SiloUnavailableException(fixedSilo, "it refused the call");
                            }

                            Directory.Invalidate(target.GrainId);
                            break;
                    }
                }
                catch (Exception e) when (e is ConnectionClosedException or SiloUnavailableException && call.Silo is null && target.TargetSilo is null && Time.GetUtcNow() < deadline)
                {
                    // Never reached a silo: safe to route again once the cluster has moved on.
                    Directory.Invalidate(target.GrainId);
                }
                finally
                {
                    _pending.TryRemove(message.Id, out _);
                }

                await Task.Delay(CallOutcome.RetryDelay(attempt), Time, cancellationToken).ConfigureAwait(false);
                if (Time.GetUtcNow() >= deadline)
                {
                    throw new TimeoutException($"{target.Interface.Name}.{method.Name} on {target.GrainId}: no silo could take the call within {timeout}");
                }
            }
        }
        finally
        {
            body.Dispose();
        }
    }

    /// <summary>Picks the silo for a request (its activation's, or a new placement) and sends it there; returns that silo.</summary>
    public async Task<SiloAddress> RouteAsync(Message message)
    {
        if (message.TargetSilo is null)
        {
            message.TargetSilo = await ResolveAsync(message.Target).ConfigureAwait(false);
        }

        await SendAsync(message).ConfigureAwait(false);
        return message.TargetSilo;
    }

    /// <summary>Sends a message to its target silo: locally without the network, otherwise over the silo's connection.</summary>
    public async Task SendAsync(Message message)
    {
        var target = message.TargetSilo ?? throw new InvalidOperationException("message has no target silo");
        if (target == SiloAddress)
        {
            Deliver(message, fromNetwork: false);
            return;
        }

        if (Membership.IsDead(target))
        {
            throw new SiloUnavailableException(target, "declared dead");
        }

        var connection = await MessageCenter.GetConnectionAsync(target, CancellationToken.None).ConfigureAwait(false);
        try
        {
            await connection.SendAsync(message).ConfigureAwait(false);
        }
        catch (ConnectionClosedException)
        {
            Membership.ReportCallFailure(target);
            throw;
        }
    }

    public async Task SendResponseAsync(Message response, PooledBufferWriter? bodyOwner)
    {
        try
        {
            if (response.TargetSilo is { } silo && silo != SiloAddress)
            {
                if (!Membership.IsDead(silo))
                {
                    var connection = await MessageCenter.GetConnectionAsync(silo, CancellationToken.None).ConfigureAwait(false);
                    await connection.SendAsync(response).ConfigureAwait(false);
                }
            }
            else if (response.Client is { } client)
            {
                _clientRequests.TryRemove((client, response.Id), out _);
                if (MessageCenter.ClientConnection(client) is { } connection)
                {
                    await connection.SendAsync(response).ConfigureAwait(false);
                }
            }
            else
            {
                response.DetachFromSender();
                Complete(response);
            }
        }
        catch (MessageTooLargeException)
        {
            var tooLarge = new Message { Id = response.Id, Kind = MessageKind.Response, Status = ResponseStatus.TooLarge, TargetSilo = response.TargetSilo, Client = response.Client };
            await SendResponseAsync(tooLarge, null).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ConnectionClosedException or SiloUnavailableException or ObjectDisposedException)
        {
            LogResponseLost(_logger, response, e.Message);
        }
        finally
        {
            bodyOwner?.Dispose();
        }
    }

    /// <summary>Activates a migrated grain on <paramref name="target"/> with its dehydrated state; false when that failed.</summary>
    public async Task<bool> MigrateToAsync(GrainId grain, SiloAddress target, Dictionary<string, byte[]> state, ActivationAddress previous)
    {
        try
        {
            await GrainFactory.GetSystemTarget<ISiloControl>(target).AcceptMigrationAsync(grain, state, previous).ConfigureAwait(false);
            return true;
        }
        catch (Exception e)
        {
            LogMigrationFailed(_logger, grain, target, e);
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _accepting = false;
        await MessageCenter.DisposeAsync().ConfigureAwait(false);
        Membership.Dispose();
    }

    private async Task<SiloAddress> ResolveAsync(GrainId grain)
    {
        var grainClass = GrainTypeRegistry.Class(grain.Type);
        if (grainClass.StatelessWorker is not null)
        {
            return SiloAddress;
        }

        var address = await Directory.LookupAsync(grain).ConfigureAwait(false);
        if (address is not null && !Membership.IsDead(address.Silo))
        {
            return address.Silo;
        }

        return Placement.PickSilo(grain, grainClass);
    }

    /// <summary>When the last request from the network arrived (graceful shutdown waits for quiet).</summary>
    public DateTimeOffset LastRequestReceived => new(Interlocked.Read(ref _lastRequestTicks), TimeSpan.Zero);

    private long _lastRequestTicks;

    private ValueTask OnMessageAsync(Message message, Connection connection)
    {
        if (message.IsRequest)
        {
            Interlocked.Exchange(ref _lastRequestTicks, Time.GetUtcNow().UtcTicks);
        }

        if (message.Sender is { } sender && Membership.IsDead(sender))
        {
            // A silo the cluster declared dead must not be served (it may hold stale activations); it is
            // told so on the connection it used, so it halts at once instead of at its next table read.
            if (message.Kind == MessageKind.Request && connection.PeerSilo is not null)
            {
                _ = TellDeclaredDeadAsync(message, connection);
            }

            message.BodyOwner?.Release();
            return ValueTask.CompletedTask;
        }

        if (connection.PeerSilo is null)
        {
            // A client's request through this gateway: route it like a local call; the response comes back here.
            message.Client = connection.PeerIdentity;
            message.Sender = SiloAddress;
            if (message.Kind == MessageKind.Cancel)
            {
                if (_clientRequests.TryGetValue((message.Client, message.Id), out var routedTo))
                {
                    // Cancel where the request went.
                    message.TargetSilo = routedTo;
                    if (routedTo == SiloAddress)
                    {
                        Dispatcher.Cancel(message);
                    }
                    else
                    {
                        _ = SendAsync(message);
                    }
                }

                return ValueTask.CompletedTask;
            }

            if (!_accepting)
            {
                Dispatcher.Reject(message);
                return ValueTask.CompletedTask;
            }

            message.TargetSilo = null;
            _ = RouteClientRequestAsync(message);
            return ValueTask.CompletedTask;
        }

        Deliver(message, fromNetwork: true);
        return ValueTask.CompletedTask;
    }

    /// <summary>A response for a client of this gateway.</summary>
    private async Task RelayToClientAsync(Message response)
    {
        _clientRequests.TryRemove((response.Client!, response.Id), out _);
        try
        {
            if (MessageCenter.ClientConnection(response.Client!) is { } connection)
            {
                await connection.SendAsync(response.CreateForward()).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is ConnectionClosedException or ObjectDisposedException or MessageTooLargeException)
        {
            LogResponseLost(_logger, response, e.Message);
        }
        finally
        {
            response.BodyOwner?.Release();
        }
    }

    private async Task RouteClientRequestAsync(Message message)
    {
        try
        {
            var key = (message.Client!, message.Id);
            if (message.Kind == MessageKind.Request)
            {
                _clientRequests[key] = SiloAddress;
            }

            var silo = await RouteAsync(message).ConfigureAwait(false);
            if (message.Kind == MessageKind.Request)
            {
                // Unless the response already came back (and removed the entry).
                _clientRequests.TryUpdate(key, silo, SiloAddress);
            }
        }
        catch (Exception e) when (e is ConnectionClosedException or SiloUnavailableException)
        {
            // Not delivered: the client routes it again through a gateway.
            Dispatcher.Reject(message);
        }
        catch (Exception e) when (e is MessageTooLargeException or InvalidOperationException)
        {
            Dispatcher.Fail(message, e);
        }
    }

    private void Deliver(Message message, bool fromNetwork)
    {
        switch (message.Kind)
        {
            case MessageKind.Response when message.Client is not null:
                _ = RelayToClientAsync(message);
                return;
            case MessageKind.Response:
                Complete(message);
                return;
            case MessageKind.Cancel:
                Dispatcher.Cancel(message);
                return;
        }

        if (!fromNetwork && message.BodyOwner is null)
        {
            // A local call: the caller's body buffer is disposed when the call ends; the callee gets its own
            // copy of the inline bytes, and the attached tensors as they are.
            message.DetachFromSender();
        }

        if (_stopped)
        {
            Dispatcher.Reject(message);
            return;
        }

        // System targets (directory partition, probes, migration) keep serving while the silo shuts
        // down gracefully; only grain requests are refused, and their callers route them elsewhere.
        if (_systemTargets.TryGetValue(message.Interface, out var system))
        {
            _ = InvokeSystemTargetAsync(system.Invoker, system.Target, message);
            return;
        }

        if (!_accepting)
        {
            Dispatcher.Reject(message);
            return;
        }

        Catalog.Deliver(message);
    }

    private async Task InvokeSystemTargetAsync(IGrainInvoker invoker, object target, Message message)
    {
        var result = new PooledBufferWriter();
        try
        {
            var reader = message.CreateReader();
            await invoker.InvokeAsync(target, message.MethodId, ref reader, new Writer(result), CancellationToken.None).ConfigureAwait(false);
            if (message.Kind == MessageKind.Request)
            {
                await SendResponseAsync(message.CreateResponse(ResponseStatus.Ok, result), result).ConfigureAwait(false);
                result = null;
            }
        }
        catch (Exception e)
        {
            Dispatcher.Fail(message, e);
        }
        finally
        {
            result?.Dispose();
            message.BodyOwner?.Release();
        }
    }

    private static async Task TellDeclaredDeadAsync(Message request, Connection connection)
    {
        try
        {
            await connection.SendAsync(request.CreateResponse(ResponseStatus.SenderDeclaredDead, null)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ConnectionClosedException or ObjectDisposedException)
        {
        }
    }

    private void Complete(Message response)
    {
        if (_pending.TryRemove(response.Id, out var call))
        {
            call.Complete(response);
        }
        else
        {
            response.BodyOwner?.Release();
        }
    }

    private async Task SendCancelAsync(Message request, SiloAddress silo)
    {
        try
        {
            await SendAsync(new Message { Id = request.Id, Kind = MessageKind.Cancel, Sender = SiloAddress, TargetSilo = silo, Target = request.Target, Interface = request.Interface }).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ConnectionClosedException or SiloUnavailableException)
        {
        }
    }

    /// <summary>Calls in flight to <paramref name="silo"/> will not be answered: fail them now.</summary>
    public void FailCallsTo(SiloAddress silo, string reason)
    {
        foreach (var call in _pending.Values.Where(c => c.Silo == silo))
        {
            LogCallFailed(_logger, call.Id, silo, reason);
            call.Fail(new SiloUnavailableException(silo, "it went away while the call was in flight"));
        }

        // Requests this gateway passed on for its clients will not be answered either.
        foreach (var ((client, id), routedTo) in _clientRequests)
        {
            if (routedTo == silo && _clientRequests.TryRemove((client, id), out _))
            {
                LogCallFailed(_logger, id, silo, reason);
                Dispatcher.Fail(new Message { Id = id, Kind = MessageKind.Request, Client = client }, new SiloUnavailableException(silo, "it went away while the call was in flight"));
            }
        }
    }

    private void OnConnectionClosed(Connection connection)
    {
        if (connection.PeerSilo is not { } silo || connection.Draining)
        {
            return;
        }

        FailCallsTo(silo, "connection closed");
        Membership.ReportCallFailure(silo);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Call #{Id} to {Silo} fails: {Reason}")]
    private static partial void LogCallFailed(ILogger logger, long id, SiloAddress silo, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Silo {Silo} refused a call: it sees this silo as declared dead; re-reading the membership table")]
    private static partial void LogToldDeclaredDead(ILogger logger, SiloAddress silo);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Response {Response} could not be delivered: {Reason}")]
    private static partial void LogResponseLost(ILogger logger, Message response, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Migrating {Grain} to {Silo} failed")]
    private static partial void LogMigrationFailed(ILogger logger, GrainId grain, SiloAddress silo, Exception error);

    private TimeSpan Remaining(DateTimeOffset deadline)
    {
        var left = deadline - Time.GetUtcNow();
        return left > TimeSpan.Zero ? left : TimeSpan.Zero;
    }

    private readonly record struct Unit;

    private sealed class PendingCall(long id)
    {
        private readonly TaskCompletionSource<Message> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public long Id { get; } = id;

        public SiloAddress? Silo { get; set; }

        public Task<Message> Task => _completion.Task;

        public void Complete(Message response)
        {
            if (!_completion.TrySetResult(response))
            {
                response.BodyOwner?.Release();
            }
        }

        public void Fail(Exception error) => _completion.TrySetException(error);
    }
}

/// <summary>The silo that held (or was to hold) the target is gone or not taking requests.</summary>
public sealed class SiloUnavailableException : Exception
{
    public SiloUnavailableException(SiloAddress silo, string reason)
        : base($"silo {silo} is unavailable: {reason}")
    {
    }

    public SiloUnavailableException()
    {
    }

    public SiloUnavailableException(string message)
        : base(message)
    {
    }

    public SiloUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
