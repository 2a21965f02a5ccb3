using Orleans.MoE.Runtime.Placement;
using Orleans.MoE.Runtime.Serialization;
using Orleans.MoE.Runtime.Storage;

namespace Orleans.MoE.Runtime.Tests.Grains;

[GenerateSerializer]
public sealed record Point(int X, int Y, string Label);

public interface ICounterGrain : IGrainWithStringKey
{
    Task<int> Add(int amount);

    Task<int> Current();

    /// <summary>Which silo and activation answered.</summary>
    Task<string> Where();

    Task<int> Activations();

    Task Deactivate();

    Task<Point> Echo(Point point);

    Task<List<int>> Range(int count);

    Task Fail(string message);
}

public sealed class CounterGrain : Grain, ICounterGrain
{
    private static int s_activations;
    private int _value;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref s_activations);
        return Task.CompletedTask;
    }

    public Task<int> Add(int amount) => Task.FromResult(_value += amount);

    public Task<int> Current() => Task.FromResult(_value);

    public Task<string> Where() => Task.FromResult($"{Silo}/{RuntimeHelpersActivation()}");

    public Task<int> Activations() => Task.FromResult(Volatile.Read(ref s_activations));

    public Task Deactivate()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    public Task<Point> Echo(Point point) => Task.FromResult(point with { Label = point.Label + "!" });

    public Task<List<int>> Range(int count) => Task.FromResult(Enumerable.Range(0, count).ToList());

    public Task Fail(string message) => throw new InvalidOperationException(message);

    private string RuntimeHelpersActivation() => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(this).ToString(System.Globalization.CultureInfo.InvariantCulture);
}

public interface ISlowGrain : IGrainWithIntegerKey
{
    /// <summary>Records entry and exit around a delay; returns the log.</summary>
    Task<List<string>> Work(string name, int milliseconds);

    Task<List<string>> Log();

    [AlwaysInterleave]
    Task<int> Peek();

    Task<bool> WaitForCancellation(CancellationToken cancellationToken);

    [ResponseTimeout(0.3)]
    Task Hang();

    /// <summary>Calls the other grain, which calls back into this one (a call-chain cycle).</summary>
    Task<int> PingPong(long other, int depth);
}

public class SlowGrain : Grain, ISlowGrain
{
    private readonly List<string> _log = [];
    private int _running;

    public async Task<List<string>> Work(string name, int milliseconds)
    {
        _log.Add($"start {name} ({++_running} running)");
        await Task.Delay(milliseconds);
        _log.Add($"end {name}");
        _running--;
        return [.. _log];
    }

    public Task<List<string>> Log() => Task.FromResult(_log.ToList());

    public Task<int> Peek() => Task.FromResult(_running);

    public async Task<bool> WaitForCancellation(CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(20), cancellationToken);
            return false;
        }
        catch (OperationCanceledException)
        {
            CancelledCount.Increment();
            return true;
        }
    }

    public Task Hang() => Task.Delay(TimeSpan.FromSeconds(5));

    public async Task<int> PingPong(long other, int depth) =>
        depth == 0 ? 0 : 1 + await GrainFactory.GetGrain<ISlowGrain>(other).PingPong(GetPrimaryKeyLong(), depth - 1);
}

[Reentrant]
public sealed class ReentrantSlowGrain : Grain, IReentrantSlowGrain
{
    private int _running;
    private int _maxRunning;

    public async Task<int> Work(int milliseconds)
    {
        _maxRunning = Math.Max(_maxRunning, ++_running);
        await Task.Delay(milliseconds);
        _running--;
        return _maxRunning;
    }
}

public interface IReentrantSlowGrain : IGrainWithIntegerKey
{
    /// <summary>Returns the most requests seen running at once.</summary>
    Task<int> Work(int milliseconds);
}

public static class CancelledCount
{
    private static int s_count;

    public static int Value => Volatile.Read(ref s_count);

    public static void Increment() => Interlocked.Increment(ref s_count);
}

public interface IWorkerGrain : IGrainWithIntegerKey
{
    /// <summary>Sleeps, then says which activation and silo ran it.</summary>
    Task<string> Run(int milliseconds);
}

[StatelessWorker(4)]
public sealed class WorkerGrain : Grain, IWorkerGrain
{
    private readonly string _id = Guid.NewGuid().ToString("N");

    public async Task<string> Run(int milliseconds)
    {
        await Task.Delay(milliseconds);
        return $"{Silo}|{_id}";
    }
}

public interface IOneWayGrain : IGrainWithStringKey
{
    [OneWay]
    Task Record(string value);

    Task<List<string>> Recorded();
}

public sealed class OneWayGrain : Grain, IOneWayGrain
{
    private readonly List<string> _values = [];

    public async Task Record(string value)
    {
        await Task.Delay(100);
        _values.Add(value);
    }

    public Task<List<string>> Recorded() => Task.FromResult(_values.ToList());
}

public interface ITensorGrain : IGrainWithIntegerKey
{
    /// <summary>Returns the payload scaled by <paramref name="factor"/>.</summary>
    Task<TensorPayload> Scale(TensorPayload input, float factor);

    Task<long> Sum(TensorPayload input);
}

public sealed class TensorGrain : Grain, ITensorGrain
{
    public Task<TensorPayload> Scale(TensorPayload input, float factor)
    {
        using (input)
        {
            var values = input.AsSingles().ToArray();
            for (var i = 0; i < values.Length; i++)
            {
                values[i] *= factor;
            }

            return Task.FromResult(TensorPayload.FromSingles(values, input.Shape));
        }
    }

    public Task<long> Sum(TensorPayload input)
    {
        using (input)
        {
            long sum = 0;
            foreach (var b in input.Bytes.Span)
            {
                sum += b;
            }

            return Task.FromResult(sum);
        }
    }
}

public interface IGpuGrain : IGrainWithStringKey
{
    Task<string> Silo();
}

[CapabilityPlacement("gpu", "true")]
public sealed class GpuGrain : Grain, IGpuGrain
{
    Task<string> IGpuGrain.Silo() => Task.FromResult(Silo.ToString());
}

public interface ILocalGrain : IGrainWithStringKey
{
    Task<string> Silo();
}

[PreferLocalPlacement]
public sealed class LocalGrain : Grain, ILocalGrain
{
    Task<string> ILocalGrain.Silo() => Task.FromResult(Silo.ToString());
}

public interface IPinnedGrain : IGrainWithStringKey
{
    Task<string> Silo();
}

/// <summary>A custom director: always the silo whose port is highest.</summary>
public sealed class HighestPortDirector : IPlacementDirector
{
    public SiloAddress PickSilo(PlacementContext context) => context.Silos.MaxBy(s => s.Address.Port)!.Address;
}

[CustomPlacement(typeof(HighestPortDirector))]
public sealed class PinnedGrain : Grain, IPinnedGrain
{
    Task<string> IPinnedGrain.Silo() => Task.FromResult(Silo.ToString());
}

public sealed class BankState
{
    public int Balance { get; set; }

    public List<string> History { get; set; } = [];
}

public interface IBankGrain : IGrainWithStringKey
{
    Task<int> Deposit(int amount);

    Task<int> Balance();

    Task<string?> ETag();

    Task Crash();
}

public sealed class BankGrain([PersistentState("bank")] IPersistentState<BankState> state) : Grain, IBankGrain
{
    public async Task<int> Deposit(int amount)
    {
        state.State.Balance += amount;
        state.State.History.Add($"+{amount}");
        await state.WriteStateAsync();
        return state.State.Balance;
    }

    public Task<int> Balance() => Task.FromResult(state.State.Balance);

    public Task<string?> ETag() => Task.FromResult(state.ETag);

    public Task Crash()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }
}

public interface IMigratingGrain : IGrainWithStringKey
{
    Task Store(string value);

    Task<string> Value();

    Task<string> Silo();

    Task<bool> Rehydrated();
}

public sealed class MigratingGrain : Grain, IMigratingGrain, IGrainMigrationParticipant
{
    private string _value = "";
    private bool _rehydrated;

    public Task Store(string value)
    {
        _value = value;
        return Task.CompletedTask;
    }

    public Task<string> Value() => Task.FromResult(_value);

    Task<string> IMigratingGrain.Silo() => Task.FromResult(Silo.ToString());

    public Task<bool> Rehydrated() => Task.FromResult(_rehydrated);

    public void OnDehydrate(IDictionary<string, byte[]> state) => state["value"] = System.Text.Encoding.UTF8.GetBytes(_value);

    public void OnRehydrate(IReadOnlyDictionary<string, byte[]> state)
    {
        _value = System.Text.Encoding.UTF8.GetString(state["value"]);
        _rehydrated = true;
    }
}

public interface IFailingActivationGrain : IGrainWithStringKey
{
    Task<int> Value();
}

public sealed class FailingActivationGrain : Grain, IFailingActivationGrain
{
    public override Task OnActivateAsync(CancellationToken cancellationToken) => throw new InvalidOperationException("activation refused");

    public Task<int> Value() => Task.FromResult(1);
}

public interface IIdleGrain : IGrainWithStringKey
{
    Task<int> Ping();
}

[CollectionAgeLimit(0.005)]
public sealed class IdleGrain : Grain, IIdleGrain
{
    private static int s_deactivations;

    public static int Deactivations => Volatile.Read(ref s_deactivations);

    public Task<int> Ping() => Task.FromResult(1);

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (reason == DeactivationReason.Idle)
        {
            Interlocked.Increment(ref s_deactivations);
        }

        return Task.CompletedTask;
    }
}

public interface IAgedGrain : IGrainWithStringKey
{
    Task<int> Ping();
}

[CollectionAgeLimit(10)]
public sealed class AgedGrain : Grain, IAgedGrain
{
    public Task<int> Ping() => Task.FromResult(1);
}

public interface IImmortalGrain : IGrainWithStringKey
{
    Task<int> Ping();
}

[KeepAlive]
public sealed class ImmortalGrain : Grain, IImmortalGrain
{
    public Task<int> Ping() => Task.FromResult(1);
}

public interface INamed : IGrain
{
    ValueTask<string> Name();
}

public interface IKeyedGuidGrain : IGrainWithGuidKey, INamed
{
    ValueTask<Guid> Key();

    ValueTask Touch();
}

public sealed class KeyedGuidGrain : Grain, IKeyedGuidGrain
{
    private int _touches;

    public ValueTask<Guid> Key() => ValueTask.FromResult(GetPrimaryKey());

    public ValueTask<string> Name() => ValueTask.FromResult($"guid:{_touches}");

    public ValueTask Touch()
    {
        _touches++;
        return ValueTask.CompletedTask;
    }
}

public interface ICompoundGrain : IGrainWithIntegerCompoundKey
{
    Task<string> Describe();
}

public sealed class CompoundGrain : Grain, ICompoundGrain
{
    public Task<string> Describe() => Task.FromResult($"{GetPrimaryKeyLong()}+{GetKeyExtension()}");
}

/// <summary>Places on the silo publishing the most free memory (as an expert director would).</summary>
public sealed class MostMemoryDirector : IPlacementDirector
{
    public SiloAddress PickSilo(PlacementContext context) =>
        context.Silos.MaxBy(s => s.Metadata.TryGetValue(SiloMetadataKeys.MemoryFree, out var v) ? long.Parse(v, System.Globalization.CultureInfo.InvariantCulture) : 0)!.Address;
}

public interface IMemoryHungryGrain : IGrainWithStringKey
{
    Task<string> Silo();
}

[CustomPlacement(typeof(MostMemoryDirector))]
public sealed class MemoryHungryGrain(ISiloMetadataPublisher metadata) : Grain, IMemoryHungryGrain
{
    /// <summary>Takes its share of the silo's memory, as an expert loading its weights would.</summary>
    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var free = long.Parse(metadata.Current[SiloMetadataKeys.MemoryFree], System.Globalization.CultureInfo.InvariantCulture);
        return metadata.PublishAsync(new Dictionary<string, string?> { [SiloMetadataKeys.MemoryFree] = (free - 100).ToString(System.Globalization.CultureInfo.InvariantCulture) }, cancellationToken);
    }

    Task<string> IMemoryHungryGrain.Silo() => Task.FromResult(Silo.ToString());
}
