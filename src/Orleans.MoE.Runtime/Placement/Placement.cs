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
