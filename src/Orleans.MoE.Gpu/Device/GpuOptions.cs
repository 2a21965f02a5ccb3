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

/// <summary>What a GEMM with bf16 weights does with its f32 activations.</summary>
public enum GpuPrecision
{
    /// <summary>
    /// Exact to f32 level: cuBLAS multiplies the activations split into bf16 hi and lo halves (a GEMM of
    /// twice the rows), the tiled GEMM multiplies them as they are. The CPU engine's tolerance holds.
    /// </summary>
    Exact,

    /// <summary>
    /// GEMMs (products of more than <see cref="GpuOptions.GemvTokenLimit"/> rows, or with a GEMM kernel
    /// chosen) round the activations to bf16 (to nearest even) and multiply once, with f32 accumulation, as
    /// bf16 inference does: half the tensor-core work of <see cref="Exact"/> on cuBLAS. GEMVs (decode, the
    /// experts' pairs and grouped GEMV) stay exact; so do products with f32 weights. Holds
    /// <see cref="GpuOptions.Bf16ActivationsTolerance"/>, not the CPU engine's 1e-4.
    /// </summary>
    Bf16Activations,
}

/// <summary>The names of <see cref="GpuPrecision"/> on the command line and in configuration.</summary>
public static class GpuPrecisions
{
    public static IReadOnlyList<string> Names { get; } = ["exact", "bf16-activations"];

    public static GpuPrecision Parse(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        null or "" or "exact" => GpuPrecision.Exact,
        "bf16-activations" => GpuPrecision.Bf16Activations,
        _ => throw new FormatException($"unknown precision '{text}': use one of {string.Join(", ", Names)}"),
    };

    public static string Name(this GpuPrecision precision) => Names[(int)precision];
}

/// <summary>Tunables of the GPU backend, with their defaults.</summary>
public sealed record GpuOptions
{
    public const int DefaultGemvTokenLimit = 8;
    public const int DefaultExpertPairTokenLimit = 1;
    public const int DefaultExpertGemvRowsLimit = 8;
    public const long DefaultAttentionScratchBytes = 256L << 20;

    /// <summary>
    /// The relative tolerance <see cref="GpuPrecision.Bf16Activations"/> holds against a reference:
    /// max |ours − reference| ≤ 2e-2 · max(1, max |reference|) over logits and hidden states.
    /// </summary>
    public const double Bf16ActivationsTolerance = 2e-2;

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
    /// launch per projection (each expert's weights read once per eight rows, no host round trip); above,
    /// the per-expert counts are read back and each expert runs one GEMM (cuBLAS on CUDA). Unset:
    /// <see cref="DefaultExpertGemvRowsLimit"/> on CUDA, 0 on ILGPU's CPU accelerator (where simulated
    /// warps cost more than the thread-per-output products).
    /// </summary>
    public int? ExpertGemvRowsLimit { get; init; }

    /// <summary>
    /// Bytes of attention scores one layer's attention may use at once: queries run in chunks of at most
    /// this / (4 · heads · positions) tokens, so a long prefill's scratch stays bounded (at least one token a chunk).
    /// </summary>
    public long AttentionScratchBytes { get; init; } = DefaultAttentionScratchBytes;

    public LinearKernel Linear { get; init; } = LinearKernel.Auto;

    /// <summary>What GEMMs with bf16 weights do with their f32 activations (exact by default).</summary>
    public GpuPrecision Precision { get; init; } = GpuPrecision.Exact;

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
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(AttentionScratchBytes);
    }
}
