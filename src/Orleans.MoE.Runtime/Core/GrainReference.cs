using Orleans.MoE.Runtime.Serialization;

namespace Orleans.MoE.Runtime;

/// <summary>Sends a grain call and completes with its result; implemented by the silo and the client.</summary>
public interface IGrainCallSink
{
    /// <summary>Sends the call; the body (arguments) is owned by the sink from here on.</summary>
    Task<TResult> InvokeAsync<TResult>(GrainReference target, GrainMethodInfo method, PooledBufferWriter body, CancellationToken cancellationToken);

    Task InvokeAsync(GrainReference target, GrainMethodInfo method, PooledBufferWriter body, CancellationToken cancellationToken);
}

/// <summary>Base class of generated proxies: a grain's identity and the sink its calls go through.</summary>
public abstract class GrainReference
{
    protected GrainReference(IGrainCallSink sink, GrainId id, GrainInterfaceInfo info)
    {
        Sink = sink;
        GrainId = id;
        Interface = info;
    }

    public GrainId GrainId { get; }

    public GrainInterfaceInfo Interface { get; }

    /// <summary>For system targets: the silo the call must go to.</summary>
    public SiloAddress? TargetSilo { get; internal set; }

    internal IGrainCallSink Sink { get; }

    protected static PooledBufferWriter CreateRequestBody() => new();

    protected Task InvokeAsync(int methodId, PooledBufferWriter body, CancellationToken cancellationToken) =>
        Sink.InvokeAsync(this, Interface.Methods[methodId], body, cancellationToken);

    protected Task<TResult> InvokeAsync<TResult>(int methodId, PooledBufferWriter body, CancellationToken cancellationToken) =>
        Sink.InvokeAsync<TResult>(this, Interface.Methods[methodId], body, cancellationToken);

    public override string ToString() => $"{Interface.Name}:{GrainId}";
}

/// <summary>Creates references to grains by key, as in Orleans.</summary>
public interface IGrainFactory
{
    TGrain GetGrain<TGrain>(string key)
        where TGrain : IGrainWithStringKey;

    TGrain GetGrain<TGrain>(long key)
        where TGrain : IGrainWithIntegerKey;

    TGrain GetGrain<TGrain>(Guid key)
        where TGrain : IGrainWithGuidKey;

    TGrain GetGrain<TGrain>(long key, string keyExtension)
        where TGrain : IGrainWithIntegerCompoundKey;

    /// <summary>A reference to an existing grain id (as carried in messages or state).</summary>
    TGrain GetGrain<TGrain>(GrainId id)
        where TGrain : IGrain;
}

internal sealed class GrainFactory(IGrainCallSink sink) : IGrainFactory
{
    public TGrain GetGrain<TGrain>(string key)
        where TGrain : IGrainWithStringKey => Create<TGrain>(key);

    public TGrain GetGrain<TGrain>(long key)
        where TGrain : IGrainWithIntegerKey => Create<TGrain>(GrainId.KeyOf(key));

    public TGrain GetGrain<TGrain>(Guid key)
        where TGrain : IGrainWithGuidKey => Create<TGrain>(GrainId.KeyOf(key));

    public TGrain GetGrain<TGrain>(long key, string keyExtension)
        where TGrain : IGrainWithIntegerCompoundKey => Create<TGrain>(GrainId.KeyOf(key, keyExtension));

    public TGrain GetGrain<TGrain>(GrainId id)
        where TGrain : IGrain => (TGrain)(object)GrainTypeRegistry.Interface(typeof(TGrain)).Proxy(sink, id);

    /// <summary>A proxy to the per-silo system target implementing <typeparamref name="TTarget"/> on <paramref name="silo"/>.</summary>
    public TTarget GetSystemTarget<TTarget>(SiloAddress silo)
        where TTarget : ISystemTarget
    {
        var reference = GrainTypeRegistry.Interface(typeof(TTarget)).Proxy(sink, new GrainId(typeof(TTarget).FullName!, silo.ToString()));
        reference.TargetSilo = silo;
        return (TTarget)(object)reference;
    }

    private TGrain Create<TGrain>(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var grainClass = GrainTypeRegistry.ImplementationOf(typeof(TGrain));
        return (TGrain)(object)GrainTypeRegistry.Interface(typeof(TGrain)).Proxy(sink, new GrainId(grainClass.Name, key));
    }
}
