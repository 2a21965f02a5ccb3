namespace Orleans.MoE.Runtime;

/// <summary>The grain's activation may interleave requests at awaits (it still runs one turn at a time).</summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class ReentrantAttribute : Attribute;

/// <summary>This method interleaves with any other request of its activation.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class AlwaysInterleaveAttribute : Attribute;

/// <summary>The caller does not wait for a response (the method must return Task or ValueTask).</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class OneWayAttribute : Attribute;

/// <summary>Overrides the call timeout for this method.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class ResponseTimeoutAttribute(double seconds) : Attribute
{
    public TimeSpan Timeout { get; } = TimeSpan.FromSeconds(seconds);
}

/// <summary>
/// A stateless worker: activated on the calling silo, never registered in the directory, up to
/// <see cref="MaxLocalWorkers"/> activations per silo serving requests in parallel.
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class StatelessWorkerAttribute(int maxLocalWorkers = 0) : Attribute
{
    /// <summary>Activations per silo (0: one per core).</summary>
    public int MaxLocalWorkers { get; } = maxLocalWorkers <= 0 ? Environment.ProcessorCount : maxLocalWorkers;
}

/// <summary>Deactivate the grain after it has been idle this long (overrides the silo default).</summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class CollectionAgeLimitAttribute(double minutes) : Attribute
{
    public TimeSpan Age { get; } = TimeSpan.FromMinutes(minutes);
}

/// <summary>Never collect the grain for idleness.</summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class KeepAliveAttribute : Attribute;
