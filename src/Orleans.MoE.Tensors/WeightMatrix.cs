using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Orleans.MoE.Tensors;

/// <summary>
/// A row-major [rows, cols] matrix of weights in their stored dtype, usually a view into a
/// memory-mapped checkpoint (so resident memory stays the checkpoint's size). Linear layers store
/// weights as [out_features, in_features], so a product with activations is y = x · Wᵀ.
/// The memory must outlive the view; the owner (a checkpoint) keeps it mapped.
/// </summary>
public readonly unsafe struct WeightMatrix
{
    public WeightMatrix(nint data, int rows, int cols, DType dtype)
    {
        if (!dtype.IsFloatingPoint())
        {
            throw new ArgumentException($"weights must be F32, BF16 or F16, not {dtype}", nameof(dtype));
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        Data = data;
        Rows = rows;
        Cols = cols;
        DType = dtype;
    }

    public nint Data { get; }
    public int Rows { get; }
    public int Cols { get; }
    public DType DType { get; }

    public long ByteCount => (long)Rows * Cols * DType.Size();

    /// <summary>Wraps a managed f32 array (pinned for the life of the process: use for small or test matrices).</summary>
    public static WeightMatrix FromArray(float[] values, int rows, int cols)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Length != rows * cols)
        {
            throw new ArgumentException($"expected {rows * cols} values, got {values.Length}", nameof(values));
        }

        var pinned = GC.AllocateArray<float>(values.Length, pinned: true);
        values.CopyTo(pinned, 0);
        return new WeightMatrix((nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pinned)), rows, cols, DType.F32);
    }

    /// <summary>A view of rows [start, start + count).</summary>
    public WeightMatrix SliceRows(int start, int count)
    {
        if ((uint)start > (uint)Rows || (uint)count > (uint)(Rows - start))
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"rows [{start}, {start + count}) outside [0, {Rows})");
        }

        return new WeightMatrix(Data + (nint)((long)start * Cols * DType.Size()), count, Cols, DType);
    }

    /// <summary>Converts one row to f32.</summary>
    public void ReadRow(int row, Span<float> destination)
    {
        if ((uint)row >= (uint)Rows)
        {
            throw new ArgumentOutOfRangeException(nameof(row));
        }

        DTypeConvert.ToSingle(RowPointer(row), DType, destination[..Cols]);
    }

    /// <summary>The whole matrix as f32 (copies).</summary>
    public float[] ToArray()
    {
        var result = new float[(long)Rows * Cols];
        DTypeConvert.ToSingle(Data, DType, result);
        return result;
    }

    internal nint RowPointer(int row) => Data + (nint)((long)row * Cols * DType.Size());
}
