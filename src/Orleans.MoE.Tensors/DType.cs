namespace Orleans.MoE.Tensors;

/// <summary>Element types that checkpoints store and kernels read.</summary>
public enum DType
{
    F32,
    BF16,
    F16,
    I64,
}

public static class DTypeExtensions
{
    /// <summary>Bytes per element.</summary>
    public static int Size(this DType dtype) => dtype switch
    {
        DType.F32 => 4,
        DType.BF16 => 2,
        DType.F16 => 2,
        DType.I64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };

    /// <summary>The safetensors spelling ("F32", "BF16", ...), or null when the name is not supported.</summary>
    public static DType? FromSafetensorsName(string name) => name switch
    {
        "F32" => DType.F32,
        "BF16" => DType.BF16,
        "F16" => DType.F16,
        "I64" => DType.I64,
        _ => null,
    };

    public static bool IsFloatingPoint(this DType dtype) => dtype is DType.F32 or DType.BF16 or DType.F16;
}
