namespace Orleans.MoE.Gpu.Device;

/// <summary>Which kernel computes a linear layer's product.</summary>
public enum LinearKernel
{
    /// <summary>On CUDA: a warp per output up to <see cref="GpuOptions.GemvTokenLimit"/> rows, then cuBLAS (the tiled GEMM without it). On ILGPU's CPU accelerator: a thread per output.</summary>
    Auto,

    /// <summary>One thread per output.</summary>
    Thread,

    /// <summary>One warp per output (GEMV).</summary>
    Warp,

    /// <summary>The ILGPU tiled GEMM.</summary>
    Tiled,

    /// <summary>cuBLAS <c>cublasGemmEx</c> (CUDA only; the tiled GEMM without it).</summary>
    CuBlas,
}

/// <summary>Tunables of the GPU backend, with their defaults.</summary>
public sealed record GpuOptions
{
    public const int DefaultGemvTokenLimit = 8;
    public const int DefaultExpertPairTokenLimit = 1;
    public const int DefaultExpertGemvRowsLimit = 8;

    public static GpuOptions Default { get; } = new();

    /// <summary>Rows up to which a product runs as GEMV (weights read once per row); above, as a GEMM.</summary>
    public int GemvTokenLimit { get; init; } = DefaultGemvTokenLimit;

    /// <summary>
    /// Tokens up to which an MoE block runs each routed (token, expert) pair directly from the device's
    /// routing (decode); above, tokens are grouped by expert on the device.
    /// </summary>
    public int ExpertPairTokenLimit { get; init; } = DefaultExpertPairTokenLimit;

    /// <summary>
    /// Rows per routed expert, on average, up to which tokens grouped by expert run as one grouped GEMV
    /// launch per projection (each expert's weights read once per four rows, no host round trip); above,
    /// the per-expert counts are read back and each expert runs one GEMM (cuBLAS on CUDA). Unset:
    /// <see cref="DefaultExpertGemvRowsLimit"/> on CUDA, 0 on ILGPU's CPU accelerator (where simulated
    /// warps cost more than the thread-per-output products).
    /// </summary>
    public int? ExpertGemvRowsLimit { get; init; }

    public LinearKernel Linear { get; init; } = LinearKernel.Auto;

    /// <summary>Use cuBLAS for GEMMs on CUDA when it loads.</summary>
    public bool UseCuBlas { get; init; } = true;

    /// <summary>Which CUDA device (ordinal).</summary>
    public int CudaDevice { get; init; }

    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegative(GemvTokenLimit);
        ArgumentOutOfRangeException.ThrowIfNegative(ExpertPairTokenLimit);
        ArgumentOutOfRangeException.ThrowIfNegative(ExpertGemvRowsLimit ?? 0, nameof(ExpertGemvRowsLimit));
        ArgumentOutOfRangeException.ThrowIfNegative(CudaDevice);
    }
}
