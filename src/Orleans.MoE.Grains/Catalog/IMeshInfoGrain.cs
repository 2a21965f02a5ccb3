namespace Orleans.MoE.Grains.Catalog;

/// <summary>A silo of the mesh as the status command shows it.</summary>
[GenerateSerializer]
[Alias("moe.SiloSummary")]
public sealed record SiloSummary(SiloAddress Address, Dictionary<string, string> Metadata, int Activations);

/// <summary>The mesh's silos and models as one silo sees them (any key; a stateless worker).</summary>
[Alias("moe.IMeshInfoGrain")]
public interface IMeshInfoGrain : IGrainWithStringKey
{
    [Alias("GetSilos")]
    Task<SiloSummary[]> GetSilosAsync();

    /// <summary>Models served by at least one live silo.</summary>
    [Alias("GetModels")]
    Task<string[]> GetModelsAsync();
}
