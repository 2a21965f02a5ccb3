namespace Orleans.MoE.Runtime.Messaging;

/// <summary>What the silo runtime and the client both do with an answer, and how long they wait before trying again.</summary>
internal static class CallOutcome
{
    /// <summary>The exception a failed response stands for (grain error, oversized message), or null.</summary>
    public static Exception? FailureOf(Message response, GrainReference target, GrainMethodInfo method) => response.Status switch
    {
        ResponseStatus.Error => ExceptionCodec.Read(response.Body),
        ResponseStatus.TooLarge => new MessageTooLargeException($"a message of the call {target.Interface.Name}.{method.Name} exceeded the maximum message size"),
        _ => null,
    };

    /// <summary>Exponential pause before retry <paramref name="attempt"/>: 25 ms, doubling, at most <paramref name="max"/> (500 ms by default).</summary>
    public static TimeSpan RetryDelay(int attempt, TimeSpan? max = null)
    {
        var delay = TimeSpan.FromMilliseconds(25 << Math.Min(attempt, 4));
        var limit = max ?? TimeSpan.FromMilliseconds(500);
        return delay < limit ? delay : limit;
    }
}
