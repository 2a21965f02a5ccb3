using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Orleans.MoE.Runtime.Messaging;
using Orleans.MoE.Runtime.Serialization;

namespace Orleans.MoE.Runtime;

/// <summary>
/// Runs requests on activations and answers them: incoming filters, the generated invoker, the result
/// or the exception as the response; cancellation messages cancel the running request's token.
/// Also sends requests elsewhere when they cannot run here (forward to a directory winner, re-route
/// after a deactivation).
/// </summary>
internal sealed partial class Dispatcher(SiloRuntime runtime, IReadOnlyList<IIncomingGrainCallFilter> filters, ILogger<Dispatcher> logger)
{
    private const int MaxHops = 4;
    private readonly ConcurrentDictionary<(string Sender, string? Client, long Id), CancellationTokenSource> _running = new();

    /// <summary>Runs one request on its activation (called on the activation's scheduler).</summary>
    public async Task InvokeAsync(ActivationData activation, Message message)
    {
        RuntimeContext.CurrentActivation = activation;
        RuntimeContext.CallChain = message.CallChain;
        var key = (message.Sender?.ToString() ?? "", message.Client, message.Id);
        using var cancellation = new CancellationTokenSource();
        if (message.Deadline > 0)
        {
            var remaining = new DateTimeOffset(message.Deadline, TimeSpan.Zero) - runtime.Time.GetUtcNow();
            if (remaining <= TimeSpan.Zero)
            {
                Release(message);
                return;
            }

            cancellation.CancelAfter(remaining);
        }

        _running[key] = cancellation;
        var result = new PooledBufferWriter();
        try
        {
            var invoker = GrainTypeRegistry.Invoker(message.Interface);
            var method = message.MethodId < invoker.Info.Methods.Count ? invoker.Info.Methods[message.MethodId]
                : throw new InvalidOperationException($"{message.Interface} has no method {message.MethodId}");
            await CallFilters.Run(filters, activation.GrainId, invoker.Info, method, () =>
            {
                var reader = message.CreateReader();
                return invoker.InvokeAsync(activation.Instance!, message.MethodId, ref reader, new Writer(result), cancellation.Token).AsTask();
            }).ConfigureAwait(false);

            if (message.Kind == MessageKind.Request)
            {
                await runtime.SendResponseAsync(message.CreateResponse(ResponseStatus.Ok, result), result).ConfigureAwait(false);
                result = null;
            }
        }
        catch (Exception e)
        {
            if (message.Kind == MessageKind.Request)
            {
                Fail(message, e);
            }
            else
            {
                LogOneWayFailed(logger, message.Interface, activation.GrainId, e);
            }
        }
        finally
        {
            _running.TryRemove(key, out _);
            result?.Dispose();
            Release(message);
        }
    }

    /// <summary>Answers a request with an exception.</summary>
    public void Fail(Message message, Exception error)
    {
        if (message.Kind != MessageKind.Request)
        {
            Release(message);
            return;
        }

        var body = new PooledBufferWriter();
        ExceptionCodec.Write(new Writer(body), error);
        _ = runtime.SendResponseAsync(message.CreateResponse(ResponseStatus.Error, body), body);
    }

    /// <summary>Tells the caller to try elsewhere (this silo cannot take requests).</summary>
    public void Reject(Message message)
    {
        if (message.Kind == MessageKind.Request)
        {
            _ = runtime.SendResponseAsync(message.CreateResponse(ResponseStatus.Rejected, null), null);
        }

        Release(message);
    }

    public void Cancel(Message message)
    {
        if (_running.TryGetValue((message.Sender?.ToString() ?? "", message.Client, message.Id), out var cancellation))
        {
            try
            {
                cancellation.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    /// <summary>Sends a request to the silo that holds its grain's activation.</summary>
    public void Forward(Message message, SiloAddress silo)
    {
        if (++message.Hops > MaxHops)
        {
            // The cluster is still settling (a silo joining or leaving): the caller retries after a pause.
            Reject(message);
            return;
        }

        message.TargetSilo = silo;
        _ = SendOrRejectAsync(message, () => runtime.SendAsync(message));
    }

    /// <summary>Routes a request anew (its activation went away before running it).</summary>
    public void Reroute(Message message)
    {
        if (++message.Hops > MaxHops)
        {
            Reject(message);
            return;
        }

        message.TargetSilo = null;
        _ = SendOrRejectAsync(message, () => runtime.RouteAsync(message));
    }

    /// <summary>Passes a request on; when that fails, the caller hears "rejected" and routes it again, instead of waiting out its timeout.</summary>
    private async Task SendOrRejectAsync(Message message, Func<Task> send)
    {
        try
        {
            await send().ConfigureAwait(false);
        }
        catch (Exception e) when (e is ConnectionClosedException or SiloUnavailableException or ObjectDisposedException)
        {
            Reject(message);
        }
    }

    private static void Release(Message message)
    {
        message.BodyOwner?.Release();
        message.BodyOwner = null;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "One-way call {Interface} on {Grain} failed")]
    private static partial void LogOneWayFailed(ILogger logger, string @interface, GrainId grain, Exception error);
}

/// <summary>Exceptions as they cross the wire: the type name, message and stack; well-known types come back as themselves.</summary>
internal static class ExceptionCodec
{
    public static void Write(Writer writer, Exception error)
    {
        var inner = error is AggregateException { InnerExceptions.Count: 1 } aggregate ? aggregate.InnerExceptions[0] : error;
        writer.WriteString(inner.GetType().FullName);
        writer.WriteString(inner.Message);
        writer.WriteString(inner.StackTrace);
    }

    public static Exception Read(ReadOnlyMemory<byte> body)
    {
        var reader = new Reader(body);
        var type = reader.ReadString() ?? "";
        var message = reader.ReadString() ?? "";
        var stack = reader.ReadString();
        return type switch
        {
            "System.ArgumentException" => new ArgumentException(message),
            "System.ArgumentNullException" => new ArgumentNullException(null, message),
            "System.ArgumentOutOfRangeException" => new ArgumentOutOfRangeException(null, message),
            "System.InvalidOperationException" => new InvalidOperationException(message),
            "System.NotSupportedException" => new NotSupportedException(message),
            "System.NotImplementedException" => new NotImplementedException(message),
            "System.TimeoutException" => new TimeoutException(message),
            "System.Collections.Generic.KeyNotFoundException" => new KeyNotFoundException(message),
            "System.OperationCanceledException" or "System.Threading.Tasks.TaskCanceledException" => new OperationCanceledException(message),
            "Orleans.MoE.Runtime.Storage.InconsistentStateException" => new Storage.InconsistentStateException(message),
            "Orleans.MoE.Runtime.ActivationFailedException" => new ActivationFailedException(message),
            "Orleans.MoE.Runtime.SiloUnavailableException" => new SiloUnavailableException(message),
            "Orleans.MoE.Runtime.Messaging.MessageTooLargeException" => new MessageTooLargeException(message),
            _ => new RemoteGrainException(type, message, stack),
        };
    }
}

/// <summary>An exception thrown by a grain whose type the caller does not map back; keeps the remote type and stack.</summary>
public sealed class RemoteGrainException : Exception
{
    public RemoteGrainException(string typeName, string message, string? remoteStackTrace)
        : base($"{typeName}: {message}")
    {
        TypeName = typeName;
        RemoteStackTrace = remoteStackTrace;
    }

    public RemoteGrainException()
    {
        TypeName = "";
    }

    public RemoteGrainException(string message)
        : base(message)
    {
        TypeName = "";
    }

    public RemoteGrainException(string message, Exception innerException)
        : base(message, innerException)
    {
        TypeName = "";
    }

    public string TypeName { get; }

    public string? RemoteStackTrace { get; }
}
