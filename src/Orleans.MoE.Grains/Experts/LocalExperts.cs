using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Options;
using Orleans.MoE.Gpu.Experts;
using Orleans.MoE.Grains.Cluster;
using Orleans.MoE.Grains.Transport;
using Orleans.MoE.Models.Layers;

namespace Orleans.MoE.Grains.Experts;

/// <summary>
/// An expert's weights on this silo, in host memory or on the silo's device, shared by its activation and
/// every grouped computation that uses them: counted references, so the weights (their mapping, their
/// device memory) are released only when the activation has gone and no computation still runs on them.
/// </summary>
public sealed class HostedExpert
{
    private readonly IDisposable? _owner;
    private int _references = 1; // the activation's own

    /// <summary>Weights in host memory (<paramref name="owner"/>, such as their mapping, is disposed with them).</summary>
    public HostedExpert(SwiGluMlp weights, long bytes, IDisposable? owner = null)
    {
        Weights = weights;
        Bytes = bytes;
        _owner = owner;
    }

    /// <summary>Weights on the device (<paramref name="owner"/> frees them).</summary>
    public HostedExpert(DeviceExpert device, long bytes, IDisposable owner)
    {
        Device = device;
        Bytes = bytes;
        _owner = owner;
    }

    /// <summary>The weights in host memory, or null when they live on the device.</summary>
    public SwiGluMlp? Weights { get; }

    /// <summary>The weights on the silo's device, or null when they are in host memory.</summary>
    public DeviceExpert? Device { get; }

    public long Bytes { get; }

    /// <summary>Takes a reference for a computation; false once the expert has been released.</summary>
    public bool TryAcquire()
    {
        for (var current = Volatile.Read(ref _references); current > 0; current = Volatile.Read(ref _references))
        {
            if (Interlocked.CompareExchange(ref _references, current + 1, current) == current)
            {
                return true;
            }
        }

        return false;
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _references) == 0)
        {
            _owner?.Dispose();
        }
    }
}

/// <summary>
/// The expert activations of this silo: their weights (for grouped execution), the memory budget they
/// share, and the load they have served. On a GPU silo (<see cref="ExpertDevice"/>) the weights live on
/// the device and the budget is device memory. Publishes the free budget to placement
/// (<see cref="SiloMetadataKeys.MemoryFree"/>, through <see cref="ISiloMetadataPublisher"/>) whenever it
/// changes, with the device's memory figures and the GPU flag.
/// </summary>
public sealed class LocalExperts : IExpertBatchExecutor
{
    private readonly ConcurrentDictionary<ExpertKey, HostedExpert> _experts = new();
    private readonly ISiloMetadataPublisher _silos;
    /// <summary>The share of the memory (the host's, or a GPU's) given to expert weights by default; the rest is for everything else.</summary>
    public const double DefaultBudgetFraction = 0.8;

    private readonly ExpertDevice? _device;
    private readonly object _budgetLock = new();
    private long _reserved;
    private int _publishPending;

    public LocalExperts(IOptions<MeshOptions> options, ISiloMetadataPublisher silos, ExpertLoadMeter load, ExpertDevice? device = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(silos);
        _silos = silos;
        _device = device is { IsGpu: true } ? device : null;
        Load = load;
        Budget = options.Value.ExpertMemoryBytes > 0
            ? options.Value.ExpertMemoryBytes
            : _device?.DefaultBudget ?? (long)(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes * DefaultBudgetFraction);
    }

    /// <summary>The device the experts run on, or null: the CPU engine.</summary>
    public ExpertDevice? Device => _device;

    /// <summary>Bytes of expert weights this silo may hold (on its device, on a GPU silo).</summary>
    public long Budget { get; }

    public long Reserved => Interlocked.Read(ref _reserved);

    public long Free => Budget - Reserved;

    public ExpertLoadMeter Load { get; }

    /// <summary>This silo.</summary>
    public SiloAddress Silo => _silos.Local;

    /// <summary>The expert activations hosted here.</summary>
    public IReadOnlyCollection<ExpertKey> Hosted => (IReadOnlyCollection<ExpertKey>)_experts.Keys;

    /// <summary>The hosted expert activations (of <paramref name="model"/>, or all) with the tokens each computed over the load window.</summary>
    public ExpertLoad[] HostedLoad(string? model = null)
    {
        var load = Load.Snapshot();
        return Hosted.Where(k => model is null || k.Model == model).Select(k => new ExpertLoad(k.ToString(), load.GetValueOrDefault(k))).ToArray();
    }

    /// <summary>Whether this silo hosts an activation of <paramref name="key"/>.</summary>
    public bool IsHosted(ExpertKey key) => _experts.ContainsKey(key);

    /// <summary>The expert's weights with a reference taken (release it after the computation), or null when it is not hosted here.</summary>
    public HostedExpert? Acquire(ExpertKey key) => _experts.TryGetValue(key, out var expert) && expert.TryAcquire() ? expert : null;

    /// <summary>Charges <paramref name="bytes"/> to the budget, or says why there is no room. Undo with <see cref="Unreserve"/>.</summary>
    public void Reserve(ExpertKey key, long bytes)
    {
        lock (_budgetLock)
        {
            if (_reserved + bytes > Budget)
            {
                throw new ExpertCapacityException(
                    $"expert {key} needs {bytes} bytes but this silo has {Budget - _reserved} of its {Budget}-byte expert budget free");
            }

            _reserved += bytes;
        }

        PublishSoon();
    }

    public void Unreserve(long bytes)
    {
        lock (_budgetLock)
        {
            _reserved -= bytes;
        }

        PublishSoon();
    }

    /// <summary>Registers a reserved expert's weights for grouped execution.</summary>
    public void Add(ExpertKey key, HostedExpert expert) => _experts[key] = expert;

    /// <summary>Unregisters the expert and drops the activation's reference (the weights go when the last computation ends) and its budget.</summary>
    public void Remove(ExpertKey key)
    {
        if (_experts.TryRemove(key, out var expert))
        {
            expert.Release();
            Unreserve(expert.Bytes);
        }
    }

    /// <summary>
    /// Runs the slots' experts (of <paramref name="model"/>'s layer <paramref name="layer"/>) that are hosted
    /// here as one grouped computation. Slot i's rows start at row <paramref name="offsets"/>[i] of input
    /// and output (by default slot after slot). Returns the indices of the slots whose expert is not
    /// hosted here (their output rows are zero).
    /// </summary>
    public int[] Execute(string model, int layer, IReadOnlyList<ExpertSlot> slots, ReadOnlySpan<float> input, Span<float> output, int hidden, IReadOnlyList<int>? offsets = null)
    {
        ArgumentNullException.ThrowIfNull(slots);
        var group = new List<ExpertRows>(slots.Count);
        var onDevice = new List<ExpertRowsOnDevice>();
        var held = new List<HostedExpert>(slots.Count);
        var missing = new List<int>();
        try
        {
            var next = 0;
            for (var i = 0; i < slots.Count; i++)
            {
                var slot = slots[i];
                var offset = offsets?[i] ?? next;
                var key = new ExpertKey(model, layer, slot.Expert, slot.Replica);
                if (Acquire(key) is { } expert)
                {
                    held.Add(expert);
                    if (expert.Device is { } device)
                    {
                        onDevice.Add(new ExpertRowsOnDevice(device, offset, slot.Count));
                    }
                    else
                    {
                        group.Add(new ExpertRows(expert.Weights!, offset, slot.Count));
                    }

                    Load.Record(key, slot.Count);
                }
                else
                {
                    output.Slice(offset * hidden, slot.Count * hidden).Clear();
                    missing.Add(i);
                }

                next = offset + slot.Count;
            }

            ExpertGroup.Forward(group, input, output, hidden);
            if (onDevice.Count > 0)
            {
                _device!.Forward(onDevice, input, output);
            }
        }
        finally
        {
            foreach (var expert in held)
            {
                expert.Release();
            }
        }

        return missing.ToArray();
    }

    /// <summary>
    /// Runs a batch that arrived from another silo's gate: its experts hosted here as one group. The rows
    /// of missing experts are zero; when every expert is missing, the result has no rows at all.
    /// </summary>
    public ValueTask<ExpertBatchResult> ExecuteAsync(ExpertBatch batch) => ValueTask.FromResult(Execute(batch));

    private ExpertBatchResult Execute(ExpertBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var (count, hidden) = (batch.Rows.Rows, batch.Rows.Columns);
        if (batch.Slots.Sum(s => (long)s.Count) != count || batch.Slots.Any(s => s.Count < 0))
        {
            throw new ArgumentException($"expert batch rows {batch.Rows} do not match its slots ({batch.Slots.Sum(s => (long)s.Count)} rows)", nameof(batch));
        }

        var started = Stopwatch.GetTimestamp();
        if (!batch.Slots.Any(s => IsHosted(new ExpertKey(batch.Model, batch.Layer, s.Expert, s.Replica))))
        {
            // None of them here (they moved): say so without touching the rows.
            return new ExpertBatchResult(TensorPayload.Rent(0, hidden), [.. Enumerable.Range(0, batch.Slots.Length)], 0);
        }

        var output = TensorPayload.Rent(count, hidden);
        try
        {
            var missing = Execute(batch.Model, batch.Layer, batch.Slots, batch.Rows.Values, output.Values, hidden);
            if (missing.Length == batch.Slots.Length)
            {
                output.Dispose();
                output = TensorPayload.Rent(0, hidden);
            }

            return new ExpertBatchResult(output, missing, (long)Stopwatch.GetElapsedTime(started).TotalMicroseconds);
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    /// <summary>Publishes the free budget now (also done after every change, coalesced).</summary>
    public Task PublishAsync()
    {
        var figures = new Dictionary<string, string?>
        {
            [SiloMetadataKeys.MemoryFree] = Free.ToString(CultureInfo.InvariantCulture),
            [SiloMetadataKeys.ExpertBudget] = Budget.ToString(CultureInfo.InvariantCulture),
            [SiloMetadataKeys.HostMemory] = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes.ToString(CultureInfo.InvariantCulture),
            [SiloMetadataKeys.Gpu] = _device is null ? null : "true",
            [SiloMetadataKeys.Device] = _device?.Reason,
        };
        if (_device?.Device?.Memory is { } memory)
        {
            figures[SiloMetadataKeys.DeviceMemory] = memory.TotalBytes.ToString(CultureInfo.InvariantCulture);
            figures[SiloMetadataKeys.DeviceMemoryUsed] = memory.AllocatedBytes.ToString(CultureInfo.InvariantCulture);
        }

        return _silos.PublishAsync(figures);
    }

    private void PublishSoon()
    {
        if (Interlocked.Exchange(ref _publishPending, 1) == 0)
        {
            _ = Task.Run(async () =>
            {
                await Task.Delay(50).ConfigureAwait(false);
                Volatile.Write(ref _publishPending, 0);
                try
                {
                    await PublishAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException || MeshFaults.IsTransient(e))
                {
                    // The silo is stopping; the next heartbeat (if any) carries the figure.
                }
            });
        }
    }
}
