namespace Orleans.MoE.Grains.Cluster;

/// <summary>
/// A silo's published metadata (key: the silo's address, <see cref="SiloAddress.ToParsableString"/>); the grain
/// always lives on that silo. Peers ask it when they first see the silo, and it is told of its peers' changes.
/// </summary>
[Alias("moe.ISiloMetadataGrain")]
public interface ISiloMetadataGrain : IGrainWithStringKey
{
    /// <summary>This silo's metadata and its version (higher is newer).</summary>
    [Alias("Get")]
    Task<(long Version, Dictionary<string, string> Metadata)> GetAsync();

    /// <summary>A peer's new metadata, pushed when it changes.</summary>
    [OneWay]
    [Alias("Notify")]
    Task NotifyAsync(SiloAddress silo, long version, Dictionary<string, string> metadata);
}

[OnNamedSiloPlacement]
internal sealed class SiloMetadataGrain(MeshSilos silos) : Grain, ISiloMetadataGrain
{
    public Task<(long Version, Dictionary<string, string> Metadata)> GetAsync() => Task.FromResult(silos.LocalMetadata());

    public Task NotifyAsync(SiloAddress silo, long version, Dictionary<string, string> metadata)
    {
        silos.Accept(silo, version, metadata);
        return Task.CompletedTask;
    }
}
