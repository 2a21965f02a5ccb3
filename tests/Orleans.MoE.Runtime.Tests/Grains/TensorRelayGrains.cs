using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Orleans.MoE.Runtime.Placement;
using Orleans.MoE.Runtime.Serialization;

namespace Orleans.MoE.Runtime.Tests.Grains;

/// <summary>A tensor grain that lives where it is first called: tests put it on a chosen silo.</summary>
public interface ILocalTensorGrain : IGrainWithIntegerKey
{
    Task<string> Where();

    /// <summary>Whether the payload's bytes are the very array registered under <paramref name="tag"/> (no copy).</summary>
    Task<bool> SharesMemory(TensorPayload payload, string tag);

    /// <summary>Returns the same payload (same memory when caller and grain share a silo).</summary>
    Task<TensorPayload> Echo(TensorPayload payload);

    /// <summary>Keeps the payload after the call returns.</summary>
    Task Keep(TensorPayload payload);

    /// <summary>The byte sum of the kept payload.</summary>
    Task<long> KeptSum();

    /// <summary>Sends <paramref name="payload"/> on to another grain and returns that grain's answer (the gate's pattern).</summary>
    Task<TensorPayload> Relay(TensorPayload payload, long expert, float factor);
}

[PreferLocalPlacement]
public sealed class LocalTensorGrain : Grain, ILocalTensorGrain
{
    /// <summary>Arrays the tests registered, by tag, for the no-copy checks.</summary>
    public static ConcurrentDictionary<string, byte[]> Registered { get; } = new();

    private TensorPayload? _kept;

    public Task<string> Where() => Task.FromResult(Silo.ToString());

    public Task<bool> SharesMemory(TensorPayload payload, string tag)
    {
        using (payload)
        {
            return Task.FromResult(MemoryMarshal.TryGetArray(payload.Bytes, out var segment) && ReferenceEquals(segment.Array, Registered[tag]));
        }
    }

    public Task<TensorPayload> Echo(TensorPayload payload) => Task.FromResult(payload);

    public Task Keep(TensorPayload payload)
    {
        _kept?.Dispose();
        _kept = payload;
        return Task.CompletedTask;
    }

    public Task<long> KeptSum()
    {
        long sum = 0;
        foreach (var b in _kept!.Bytes.Span)
        {
            sum += b;
        }

        return Task.FromResult(sum);
    }

    public async Task<TensorPayload> Relay(TensorPayload payload, long expert, float factor)
    {
        using (payload)
        {
            return await GrainFactory.GetGrain<ITensorGrain>(expert).Scale(payload, factor);
        }
    }
}
