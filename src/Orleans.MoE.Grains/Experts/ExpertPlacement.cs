namespace Orleans.MoE.Grains.Experts;

/// <summary>Expert activations are placed by <see cref="Placement.ExpertPlacementDirector"/>.</summary>
[GenerateSerializer]
[Immutable]
[Alias("moe.ExpertPlacementStrategy")]
public sealed class ExpertPlacementStrategy : PlacementStrategy
{
    public static ExpertPlacementStrategy Instance { get; } = new();
}

/// <summary>The grain is an expert activation, placed within silos' expert memory by the mesh's plan.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class ExpertPlacementAttribute() : PlacementAttribute(ExpertPlacementStrategy.Instance);
