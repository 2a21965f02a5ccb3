namespace Orleans.MoE.Grains.Cluster;

/// <summary>What silos publish about themselves through <see cref="MeshSilos"/>, read by placement and the planner.</summary>
public static class SiloMetadataKeys
{
    /// <summary>"true" on a silo whose experts run on a GPU (its <c>Mesh:Device</c> gave one); placement prefers such silos.</summary>
    public const string Gpu = "gpu";

    /// <summary>What runs the silo's experts, in one line (on GPU silos), e.g. "cuda: NVIDIA H200 (SM_90, 139.8 GiB), cuBLAS ...".</summary>
    public const string Device = "device";

    /// <summary>The size of the silo's device memory in bytes (GPU silos; their expert budget comes from it).</summary>
    public const string DeviceMemory = "device-memory";

    /// <summary>The device memory this silo's process holds in bytes: expert weights and scratch (GPU silos).</summary>
    public const string DeviceMemoryUsed = "device-memory-used";

    /// <summary>Bytes of expert weights the silo can still take.</summary>
    public const string MemoryFree = "memory-free";

    /// <summary>The silo's expert budget in bytes.</summary>
    public const string ExpertBudget = "expert-budget";

    /// <summary>The memory the silo's host makes available to it, in bytes (silos on one host share it).</summary>
    public const string HostMemory = "host-memory";

    /// <summary>"ip:port" of the silo's data channel, which carries expert batches (<see cref="Transport.DataChannelServer"/>).</summary>
    public const string DataEndpoint = "data-endpoint";

    /// <summary>"model.{name}" = the fingerprint of the silo's copy, published when the copy loaded and matches the mesh's.</summary>
    public static string Model(string name) => "model." + name;

    /// <summary>"model-error.{name}" = why the silo's copy of the model cannot be served (it did not load, or differs).</summary>
    public static string ModelError(string name) => "model-error." + name;

    /// <summary>The models a silo's metadata says it serves.</summary>
    public static IEnumerable<string> Models(IReadOnlyDictionary<string, string> metadata) =>
        metadata.Keys.Where(k => k.StartsWith(Model(""), StringComparison.Ordinal)).Select(k => k[Model("").Length..]);
}
