using System.Collections.Concurrent;
using System.Reflection;
using Orleans.MoE.Runtime.Placement;
using Orleans.MoE.Runtime.Serialization;

namespace Orleans.MoE.Runtime;

/// <summary>A grain method as the generator describes it.</summary>
public sealed class GrainMethodInfo(int id, string name, bool oneWay, bool alwaysInterleave, TimeSpan? timeout)
{
    public int Id { get; } = id;
    public string Name { get; } = name;
    public bool OneWay { get; } = oneWay;
    public bool AlwaysInterleave { get; } = alwaysInterleave;
    public TimeSpan? Timeout { get; } = timeout;
}

/// <summary>A grain interface: its name on the wire and its methods by id.</summary>
public sealed class GrainInterfaceInfo(Type type, string name, GrainMethodInfo[] methods)
{
    public Type Type { get; } = type;
    public string Name { get; } = name;
    public IReadOnlyList<GrainMethodInfo> Methods { get; } = methods;
}

/// <summary>Reads a method's arguments, calls the grain and writes the result (generated per interface).</summary>
public interface IGrainInvoker
{
    GrainInterfaceInfo Info { get; }

    ValueTask InvokeAsync(object grain, int methodId, ref Reader arguments, Writer result, CancellationToken cancellationToken);
}

/// <summary>A grain class and how the runtime treats it.</summary>
public sealed class GrainClassInfo
{
    internal GrainClassInfo(Type type)
    {
        Type = type;
        Name = type.FullName ?? type.Name;
        Reentrant = type.GetCustomAttribute<ReentrantAttribute>() is not null;
        StatelessWorker = type.GetCustomAttribute<StatelessWorkerAttribute>();
        KeepAlive = type.GetCustomAttribute<KeepAliveAttribute>() is not null;
        CollectionAge = type.GetCustomAttribute<CollectionAgeLimitAttribute>()?.Age;
        Placement = type.GetCustomAttribute<PlacementAttribute>();
    }

    public Type Type { get; }
    public string Name { get; }
    public bool Reentrant { get; }
    public StatelessWorkerAttribute? StatelessWorker { get; }
    public bool KeepAlive { get; }
    public TimeSpan? CollectionAge { get; }
    public PlacementAttribute? Placement { get; }
}

/// <summary>
/// What the source generator registered: invokers and proxy factories per interface, grain classes and
/// which class implements which interface. Filled by module initializers before any call.
/// </summary>
public static class GrainTypeRegistry
{
    private static readonly ConcurrentDictionary<Type, (IGrainInvoker Invoker, Func<IGrainCallSink, GrainId, GrainReference> Proxy)> s_interfaces = new();
    private static readonly ConcurrentDictionary<string, IGrainInvoker> s_invokersByName = new();
    private static readonly ConcurrentDictionary<Type, GrainClassInfo> s_classes = new();
    private static readonly ConcurrentDictionary<string, GrainClassInfo> s_classesByName = new();
    private static readonly ConcurrentDictionary<Type, List<GrainClassInfo>> s_implementations = new();

    public static void AddInterface(Type type, IGrainInvoker invoker, Func<IGrainCallSink, GrainId, GrainReference> proxy)
    {
        ArgumentNullException.ThrowIfNull(type);
        ArgumentNullException.ThrowIfNull(invoker);
        s_interfaces[type] = (invoker, proxy);
        s_invokersByName[invoker.Info.Name] = invoker;
    }

    public static void AddGrainClass(Type type, Type[] interfaces)
    {
        ArgumentNullException.ThrowIfNull(type);
        var info = new GrainClassInfo(type);
        s_classes[type] = info;
        s_classesByName[info.Name] = info;
        foreach (var i in interfaces)
        {
            var list = s_implementations.GetOrAdd(i, _ => []);
            lock (list)
            {
                if (!list.Contains(info))
                {
                    list.Add(info);
                }
            }
        }
    }

    internal static IGrainInvoker Invoker(string interfaceName) =>
        s_invokersByName.TryGetValue(interfaceName, out var invoker) ? invoker : throw new InvalidOperationException($"no grain interface '{interfaceName}' is registered on this silo");

    internal static (IGrainInvoker Invoker, Func<IGrainCallSink, GrainId, GrainReference> Proxy) Interface(Type type) =>
        s_interfaces.TryGetValue(type, out var entry) ? entry : throw new InvalidOperationException($"{type.FullName} is not a generated grain interface (does its project reference the code generator?)");

    internal static GrainClassInfo Class(string name) =>
        s_classesByName.TryGetValue(name, out var info) ? info : throw new InvalidOperationException($"no grain class '{name}' is registered on this silo");

    /// <summary>The one class implementing <paramref name="interfaceType"/>.</summary>
    internal static GrainClassInfo ImplementationOf(Type interfaceType)
    {
        if (!s_implementations.TryGetValue(interfaceType, out var list) || list.Count == 0)
        {
            throw new InvalidOperationException($"no grain class implements {interfaceType.FullName}");
        }

        lock (list)
        {
            return list.Count == 1 ? list[0] : throw new InvalidOperationException($"{interfaceType.FullName} has several implementations ({string.Join(", ", list.Select(c => c.Name))}); none is chosen");
        }
    }
}
