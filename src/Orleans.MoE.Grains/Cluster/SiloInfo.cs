namespace Orleans.MoE.Grains.Cluster;

/// <summary>A live silo of the mesh and what it has published (models it serves, expert budget and free memory, GPU).</summary>
[GenerateSerializer]
[Alias("moe.SiloInfo")]
public sealed record SiloInfo(SiloAddress Address, IReadOnlyDictionary<string, string> Metadata);
