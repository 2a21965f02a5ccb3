namespace Orleans.MoE.Grains.Cluster;

/// <summary>Publishes this silo's metadata to the cluster (<see cref="MeshSilos"/>; a stand-in in unit tests).</summary>
public interface ISiloMetadataPublisher
{
    /// <summary>This silo's address.</summary>
    SiloAddress Local { get; }

    /// <summary>Sets (or, with null, removes) entries of this silo's metadata and tells the other silos.</summary>
    Task PublishAsync(IReadOnlyDictionary<string, string?> changes, CancellationToken cancellationToken = default);
}
