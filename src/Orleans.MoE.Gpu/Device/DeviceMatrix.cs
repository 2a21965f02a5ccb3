using ILGPU;
using Orleans.MoE.Tensors;

namespace Orleans.MoE.Gpu.Device;

/// <summary>
/// A row-major [rows, cols] view of weights on the device, bf16 (as stored) or f32 (f32 and f16
/// checkpoints): exactly one of <see cref="Bf16"/> and <see cref="F32"/> is non-empty.
/// </summary>
public readonly struct MatrixView
{
    public MatrixView(ArrayView<float> f32, ArrayView<ushort> bf16, int rows, int cols)
    {
        F32 = f32;
        Bf16 = bf16;
        Rows = rows;
        Cols = cols;
    }

    public ArrayView<float> F32 { get; }

    public ArrayView<ushort> Bf16 { get; }

    public int Rows { get; }

    public int Cols { get; }

    public bool IsBf16 => Bf16.Length > 0;

    public long Bytes => (long)Rows * Cols * (IsBf16 ? 2 : 4);

    /// <summary>Rows [start, start + count).</summary>
    public MatrixView SliceRows(int start, int count)
    {
        if ((uint)start > (uint)Rows || (uint)count > (uint)(Rows - start))
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"rows [{start}, {start + count}) outside [0, {Rows})");
        }

        var offset = (long)start * Cols;
        var length = (long)count * Cols;
        return IsBf16
            ? new MatrixView(default, Bf16.SubView(offset, length), count, Cols)
            : new MatrixView(F32.SubView(offset, length), default, count, Cols);
    }

    /// <summary>The device address of the first element (for cuBLAS).</summary>
    public nint Address => IsBf16 ? DevicePointers.Of(Bf16) : DevicePointers.Of(F32);
}

internal static class DevicePointers
{
    /// <summary>Copies the view to a new host array (waits for the stream).</summary>
    public static T[] ToHost<T>(this ArrayView<T> view)
        where T : unmanaged => ILGPU.Runtime.ArrayViewExtensions.GetAsArray1D<T>(view);

    public static nint Of<T>(ArrayView<T> view)
        where T : unmanaged
    {
        var contiguous = (IContiguousArrayView)view;
        return contiguous.Buffer.NativePtr + (nint)contiguous.IndexInBytes;
    }
}

/// <summary>
/// Weights resident on the device, uploaded once in their stored dtype (bf16 stays bf16; f32 stays f32;
/// f16 is widened to f32, which is exact). Several host matrices of one width can be stacked into one
/// (a layer's experts, an MLP's gate and up projections). Frees its memory on dispose.
/// </summary>
public sealed class DeviceMatrix : IDisposable
{
    private readonly DeviceBuffer<float>? _f32;
    private readonly DeviceBuffer<ushort>? _bf16;

    private DeviceMatrix(DeviceBuffer<float>? f32, DeviceBuffer<ushort>? bf16, int rows, int cols)
    {
        _f32 = f32;
        _bf16 = bf16;
        View = new MatrixView(f32?.View ?? default, bf16?.View ?? default, rows, cols);
    }

    public MatrixView View { get; }

    public int Rows => View.Rows;

    public int Cols => View.Cols;

    public long Bytes => View.Bytes;

    public static DeviceMatrix Upload(GpuDevice device, WeightMatrix matrix) => Stack(device, [matrix]);

    /// <summary>The matrices one after another, as one [Σ rows, cols] matrix (they must share cols and dtype).</summary>
    public static unsafe DeviceMatrix Stack(GpuDevice device, IReadOnlyList<WeightMatrix> matrices)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(matrices);
        if (matrices.Count == 0)
        {
            throw new ArgumentException("nothing to upload", nameof(matrices));
        }

        var cols = matrices[0].Cols;
        var dtype = matrices[0].DType;
        if (matrices.Any(m => m.Cols != cols || m.DType != dtype))
        {
            throw new ArgumentException("stacked matrices must share their width and dtype", nameof(matrices));
        }

        var rows = matrices.Sum(m => m.Rows);
        var stream = device.Accelerator.DefaultStream;
        if (dtype == DType.BF16)
        {
            var buffer = device.Allocate<ushort>((long)rows * cols, isWeights: true);
            long offset = 0;
            foreach (var m in matrices)
            {
                var count = (long)m.Rows * cols;
                var source = new ReadOnlySpan<ushort>((void*)m.Data, checked((int)count));
                ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(buffer.View.SubView(offset, count), stream, source);
                offset += count;
            }

            return new DeviceMatrix(null, buffer, rows, cols);
        }

        var f32 = device.Allocate<float>((long)rows * cols, isWeights: true);
        long at = 0;
        foreach (var m in matrices)
        {
            var values = m.ToArray();
            ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(f32.View.SubView(at, values.Length), stream, new ReadOnlySpan<float>(values));
            at += values.Length;
        }

        return new DeviceMatrix(f32, null, rows, cols);
    }

    public void Dispose()
    {
        _f32?.Dispose();
        _bf16?.Dispose();
    }
}
