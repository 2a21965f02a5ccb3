using Microsoft.Extensions.DependencyInjection;

namespace Orleans.MoE.Runtime.Placement;

/// <summary>Chooses where a grain class's new activations go.</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = true)]
public abstract class PlacementAttribute : Attribute;

/// <summary>Any live silo, uniformly (the default).</summary>
public sealed class RandomPlacementAttribute : PlacementAttribute;

/// <summary>The calling silo when it can host the grain.</summary>
public sealed class PreferLocalPlacementAttribute : PlacementAttribute;

/// <summary>The less loaded of two random silos (power of two choices), by published activation count.</summary>
public sealed class ActivationCountBasedPlacementAttribute : PlacementAttribute;

/// <summary>Only silos whose metadata has <see cref="Key"/> (equal to <see cref="Value"/> when given); among them, the least loaded.</summary>
public sealed class CapabilityPlacementAttribute(string key, string? value = null) : PlacementAttribute
{
    public string Key { get; } = key;

    public string? Value { get; } = value;
}

/// <summary>A custom director, resolved from the silo's services by type.</summary>
public sealed class CustomPlacementAttribute(Type director) : PlacementAttribute
{
    public Type Director { get; } = director;
}

/// <summary>Metadata keys with a meaning to the runtime or by convention.</summary>
public static class SiloMetadataKeys
{
    /// <summary>The silo's activation count, published by the runtime with every heartbeat.</summary>
    public const string Activations = "activations";

    /// <summary>By convention: "true" on silos with a GPU.</summary>
    public const string Gpu = "gpu";

    /// <summary>By convention: free device (or host) memory in bytes, as an invariant-culture integer.</summary>
    public const string MemoryFree = "memory-free";
}

/// <summary>
/// Publishes this silo's capabilities and capacity (e.g. <see cref="SiloMetadataKeys.MemoryFree"/>) to the
/// cluster: written to the membership table at once and with every heartbeat, seen by every silo's
/// placement at its next table read (about a second with the defaults). Inject it into grains or
/// services of the silo, or use <c>Silo.Metadata</c>.
/// </summary>
public interface ISiloMetadataPublisher
{
    /// <summary>What this silo publishes now (the runtime's own keys included).</summary>
    IReadOnlyDictionary<string, string> Current { get; }

    /// <summary>Sets (or, with a null value, removes) keys and publishes the result.</summary>
    Task PublishAsync(IReadOnlyDictionary<string, string?> changes, CancellationToken cancellationToken = default);
}

/// <summary>A silo as placement sees it: its address, published metadata (capabilities, capacity) and load (activations, as last probed).</summary>
public sealed record SiloInfo(SiloAddress Address, IReadOnlyDictionary<string, string> Metadata, int Activations);

/// <summary>What a placement director decides from.</summary>
public sealed record PlacementContext(GrainId Grain, GrainClassInfo GrainClass, SiloAddress CallingSilo, IReadOnlyList<SiloInfo> Silos);

/// <summary>Decides where a new activation goes; sees every live silo's published capacity and load.</summary>
public interface IPlacementDirector
{
    SiloAddress PickSilo(PlacementContext context);
}

/// <summary>Applies a grain class's placement strategy.</summary>
internal sealed class PlacementService(SiloRuntime runtime, IServiceProvider services)
{
    public SiloAddress PickSilo(GrainId grain, GrainClassInfo grainClass)
    {
        var silos = runtime.Membership.LiveSilos();
        if (silos.Count == 0)
        {
            return runtime.SiloAddress;
        }

        var context = new PlacementContext(grain, grainClass, runtime.SiloAddress, silos);
        return grainClass.Placement switch
        {
            PreferLocalPlacementAttribute => silos.Any(s => s.Address == runtime.SiloAddress) ? runtime.SiloAddress : Random(silos),
            ActivationCountBasedPlacementAttribute => PowerOfTwoChoices(silos),
            CapabilityPlacementAttribute capability => Capable(context, capability),
            CustomPlacementAttribute custom => ((IPlacementDirector)ActivatorUtilities.GetServiceOrCreateInstance(services, custom.Director)).PickSilo(context),
            _ => Random(silos),
        };
    }

    private static SiloAddress Random(IReadOnlyList<SiloInfo> silos) => silos[System.Random.Shared.Next(silos.Count)].Address;

    private static SiloAddress PowerOfTwoChoices(IReadOnlyList<SiloInfo> silos)
    {
        var a = silos[System.Random.Shared.Next(silos.Count)];
        var b = silos[System.Random.Shared.Next(silos.Count)];
        return (a.Activations <= b.Activations ? a : b).Address;
    }

    private static SiloAddress Capable(PlacementContext context, CapabilityPlacementAttribute capability)
    {
        var capable = context.Silos.Where(s => s.Metadata.TryGetValue(capability.Key, out var v) && (capability.Value is null || v == capability.Value)).ToList();
        return capable.Count == 0
            ? throw new InvalidOperationException($"no live silo offers '{capability.Key}{(capability.Value is null ? "" : "=" + capability.Value)}' for {context.Grain}")
            : capable.MinBy(s => s.Activations)!.Address;
    }
}
