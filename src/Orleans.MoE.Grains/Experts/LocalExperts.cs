using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.Options;
using Orleans.MoE.Grains.Hosting;
using Orleans.MoE.Models.Layers;
using Orleans.MoE.Runtime.Placement;

namespace Orleans.MoE.Grains.Experts;

/// <summary>An expert activation's failure to find room for its weights on this silo.</summary>
public sealed class ExpertCapacityException : Exception
{
    public ExpertCapacityException(string message)
        : base(message)
    {
    }

    public ExpertCapacityException()
    {
    }

    public ExpertCapacityException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The expert activations of this silo: their weights (for grouped execution), the memory budget they
/// share, and the load they have served. Publishes the free budget to placement
/// (<see cref="SiloMetadataKeys.MemoryFree"/>) whenever it changes.
/// </summary>
public sealed class LocalExperts
{
    private readonly ConcurrentDictionary<ExpertKey, SwiGluMlp> _experts = new();
    private readonly ISiloMetadataPublisher _metadata;
    private readonly object _budgetLock = new();
    private long _reserved;
    private int _publishPending;

    public LocalExperts(IOptions<MeshOptions> options, ISiloMetadataPublisher metadata, ExpertLoadMeter load)
    {
        ArgumentNullException.ThrowIfNull(options);
        _metadata = metadata;
        Load = load;
        Budget = options.Value.ExpertMemoryBytes > 0
            ? options.Value.ExpertMemoryBytes
            : (long)(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes * 0.8);
    }

    /// <summary>Bytes of expert weights this silo may hold.</summary>
    public long Budget { get; }

    public long Reserved => Interlocked.Read(ref _reserved);

    public long Free => Budget - Reserved;

    public ExpertLoadMeter Load { get; }

    /// <summary>The expert activations hosted here.</summary>
    public IReadOnlyCollection<ExpertKey> Hosted => (IReadOnlyCollection<ExpertKey>)_experts.Keys;

    public bool TryGet(ExpertKey key, out SwiGluMlp expert) => _experts.TryGetValue(key, out expert!);

    /// <summary>Takes <paramref name="bytes"/> of the budget for <paramref name="key"/> and registers its weights, or says why there is no room.</summary>
    public void Add(ExpertKey key, SwiGluMlp expert, long bytes)
    {
        ArgumentNullException.ThrowIfNull(expert);
        lock (_budgetLock)
        {
            if (_reserved + bytes > Budget)
            {
                throw new ExpertCapacityException(
                    $"expert {key} needs {bytes} bytes but this silo has {Budget - _reserved} of its {Budget}-byte expert budget free");
            }

            _reserved += bytes;
            _experts[key] = expert;
        }

        PublishSoon();
    }

    public void Remove(ExpertKey key, long bytes)
    {
        lock (_budgetLock)
        {
            if (_experts.TryRemove(key, out _))
            {
                _reserved -= bytes;
            }
        }

        PublishSoon();
    }

    /// <summary>Publishes the free budget now (also done after every change, coalesced).</summary>
    public Task PublishAsync() =>
        _metadata.PublishAsync(new Dictionary<string, string?>
        {
            [SiloMetadataKeys.MemoryFree] = Free.ToString(CultureInfo.InvariantCulture),
            [MeshMetadataKeys.ExpertBudget] = Budget.ToString(CultureInfo.InvariantCulture),
        });

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
                catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException or IOException or TimeoutException)
                {
                    // The silo is stopping; the next heartbeat (if any) carries the figure.
                }
            });
        }
    }
}

/// <summary>Silo metadata the mesh publishes.</summary>
public static class MeshMetadataKeys
{
    /// <summary>The silo's expert budget in bytes.</summary>
    public const string ExpertBudget = "expert-budget";

    /// <summary>"model.{name}" = the fingerprint of the silo's copy, published when the copy loaded and matches the mesh's.</summary>
    public static string Model(string name) => "model." + name;
}
