using System.Reflection;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;

namespace Orleans.MoE.Runtime.Storage;

/// <summary>A grain's persisted state, in the manner of Orleans' IPersistentState: read on activation, written on demand, guarded by an ETag.</summary>
public interface IPersistentState<TState>
    where TState : new()
{
    TState State { get; set; }

    /// <summary>The version last read or written; a write with a stale ETag fails with <see cref="InconsistentStateException"/>.</summary>
    string? ETag { get; }

    bool RecordExists { get; }

    Task ReadStateAsync(CancellationToken cancellationToken = default);

    Task WriteStateAsync(CancellationToken cancellationToken = default);

    Task ClearStateAsync(CancellationToken cancellationToken = default);
}

/// <summary>Declares a constructor parameter of type IPersistentState&lt;T&gt;: the state's name and the storage provider (a keyed IGrainStorage service).</summary>
[AttributeUsage(AttributeTargets.Parameter)]
public sealed class PersistentStateAttribute(string stateName, string storageName = PersistentStateAttribute.DefaultStorage) : Attribute
{
    public const string DefaultStorage = "Default";

    public string StateName { get; } = stateName;

    public string StorageName { get; } = storageName;
}

/// <summary>Stores grain state as bytes with an ETag per (state name, grain).</summary>
public interface IGrainStorage
{
    Task<(byte[]? Data, string? ETag)> ReadAsync(string stateName, GrainId grain, CancellationToken cancellationToken);

    /// <summary>Writes when the stored ETag equals <paramref name="expectedETag"/> (null: nothing stored); returns the new ETag.</summary>
    Task<string> WriteAsync(string stateName, GrainId grain, byte[] data, string? expectedETag, CancellationToken cancellationToken);

    Task ClearAsync(string stateName, GrainId grain, string? expectedETag, CancellationToken cancellationToken);
}

/// <summary>A write or clear presented an ETag that is no longer current: another writer got there first.</summary>
public sealed class InconsistentStateException : Exception
{
    public InconsistentStateException(string message)
        : base(message)
    {
    }

    public InconsistentStateException()
    {
    }

    public InconsistentStateException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

internal sealed class PersistentState<TState>(string stateName, GrainId grain, IGrainStorage storage) : IPersistentState<TState>, IReadsOnActivation
    where TState : new()
{
    public TState State { get; set; } = new();

    public string? ETag { get; private set; }

    public bool RecordExists => ETag is not null;

    public async Task ReadStateAsync(CancellationToken cancellationToken = default)
    {
        var (data, etag) = await storage.ReadAsync(stateName, grain, cancellationToken).ConfigureAwait(false);
        State = data is null ? new TState() : JsonSerializer.Deserialize<TState>(data) ?? new TState();
        ETag = etag;
    }

    public async Task WriteStateAsync(CancellationToken cancellationToken = default) =>
        ETag = await storage.WriteAsync(stateName, grain, JsonSerializer.SerializeToUtf8Bytes(State), ETag, cancellationToken).ConfigureAwait(false);

    public async Task ClearStateAsync(CancellationToken cancellationToken = default)
    {
        await storage.ClearAsync(stateName, grain, ETag, cancellationToken).ConfigureAwait(false);
        ETag = null;
        State = new TState();
    }
}

internal interface IReadsOnActivation
{
    Task ReadStateAsync(CancellationToken cancellationToken = default);
}

/// <summary>Builds the IPersistentState arguments a grain's constructor declares, and reads them on activation.</summary>
internal static class PersistentStateBinder
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Type, (Type StateType, PersistentStateAttribute Attribute)[]> s_parameters = new();
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<object, object[]> s_states = new();

    public static Type[] ExtraArgumentTypes(Type grainType) => Parameters(grainType).Select(p => typeof(IPersistentState<>).MakeGenericType(p.StateType)).ToArray();

    public static object[] CreateArguments(ActivationData activation, IServiceProvider services)
    {
        var arguments = Parameters(activation.Class.Type).Select(p =>
        {
            var storage = services.GetKeyedService<IGrainStorage>(p.Attribute.StorageName)
                ?? throw new InvalidOperationException($"no grain storage named '{p.Attribute.StorageName}' is registered (for {activation.Class.Name})");
            return Activator.CreateInstance(typeof(PersistentState<>).MakeGenericType(p.StateType), p.Attribute.StateName, activation.GrainId, storage)!;
        }).ToArray();
        activation.PersistentStates = arguments;
        return arguments;
    }

    public static async Task ReadAllAsync(ActivationData activation)
    {
        foreach (var state in activation.PersistentStates.OfType<IReadsOnActivation>())
        {
            await state.ReadStateAsync().ConfigureAwait(false);
        }
    }

    private static (Type StateType, PersistentStateAttribute Attribute)[] Parameters(Type grainType) => s_parameters.GetOrAdd(grainType, type =>
        type.GetConstructors().OrderByDescending(c => c.GetParameters().Length).FirstOrDefault()?.GetParameters()
            .Where(p => p.GetCustomAttribute<PersistentStateAttribute>() is not null && p.ParameterType.IsGenericType && p.ParameterType.GetGenericTypeDefinition() == typeof(IPersistentState<>))
            .Select(p => (p.ParameterType.GetGenericArguments()[0], p.GetCustomAttribute<PersistentStateAttribute>()!)).ToArray() ?? []);
}
