namespace Orleans.MoE.Runtime;

/// <summary>What the current code is running for: the activation whose turn it is, and the call chain that led here.</summary>
internal static class RuntimeContext
{
    private static readonly AsyncLocal<ActivationData?> s_activation = new();
    private static readonly AsyncLocal<IReadOnlyList<string>?> s_callChain = new();

    public static ActivationData? CurrentActivation
    {
        get => s_activation.Value;
        set => s_activation.Value = value;
    }

    public static IReadOnlyList<string> CallChain
    {
        get => s_callChain.Value ?? [];
        set => s_callChain.Value = value;
    }
}

/// <summary>A grain call as filters see it.</summary>
public sealed class GrainCallContext
{
    internal GrainCallContext(GrainId grain, GrainInterfaceInfo @interface, GrainMethodInfo method, Func<Task> proceed)
    {
        Grain = grain;
        Interface = @interface;
        Method = method;
        _proceed = proceed;
    }

    private readonly Func<Task> _proceed;

    public GrainId Grain { get; }
    public GrainInterfaceInfo Interface { get; }
    public GrainMethodInfo Method { get; }

    /// <summary>Filters may leave notes for each other.</summary>
    public IDictionary<string, object?> Items { get; } = new Dictionary<string, object?>();

    /// <summary>Continues to the next filter, then the call.</summary>
    public Task Invoke() => _proceed();
}

/// <summary>Runs around every call an activation on this silo receives.</summary>
public interface IIncomingGrainCallFilter
{
    Task Invoke(GrainCallContext context);
}

/// <summary>Runs around every call this silo or client sends.</summary>
public interface IOutgoingGrainCallFilter
{
    Task Invoke(GrainCallContext context);
}

internal static class CallFilters
{
    /// <summary>Runs <paramref name="filters"/> in order around <paramref name="call"/>.</summary>
    public static Task Run<TFilter>(IReadOnlyList<TFilter> filters, GrainId grain, GrainInterfaceInfo @interface, GrainMethodInfo method, Func<Task> call)
        where TFilter : class
    {
        if (filters.Count == 0)
        {
            return call();
        }

        Task Step(int index)
        {
            if (index == filters.Count)
            {
                return call();
            }

            var context = new GrainCallContext(grain, @interface, method, () => Step(index + 1));
            return filters[index] switch
            {
                IIncomingGrainCallFilter incoming => incoming.Invoke(context),
                IOutgoingGrainCallFilter outgoing => outgoing.Invoke(context),
                _ => call(),
            };
        }

        return Step(0);
    }
}
