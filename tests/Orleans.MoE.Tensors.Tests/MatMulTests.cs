using System.Runtime.InteropServices;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Tensors.Tests;

public sealed class MatMulTests
{
    public static TheoryData<DType, int, int, int> Shapes()
    {
        var data = new TheoryData<DType, int, int, int>();
        foreach (var dtype in new[] { DType.F32, DType.BF16, DType.F16 })
        {
            foreach (var tokens in new[] { 1, 2, 3, 4, 5, 33, 64 })
            {
                data.Add(dtype, tokens, 3, 7);
                data.Add(dtype, tokens, 40, 17);
                data.Add(dtype, tokens, 300, 257);
            }

            data.Add(dtype, 1, 4096, 300);
            data.Add(dtype, 8, 1030, 1024);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void The_product_matches_a_double_precision_reference(DType dtype, int tokens, int rows, int cols)
    {
        var random = new Random(rows * 31 + cols);
        var weights = Enumerable.Range(0, rows * cols).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        var x = Enumerable.Range(0, tokens * cols).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var (matrix, handle, stored) = Store(weights, rows, cols, dtype);
        try
        {
            var y = new float[tokens * rows];
            MatMul.Multiply(x, tokens, matrix, y);
            for (var t = 0; t < tokens; t++)
            {
                for (var r = 0; r < rows; r++)
                {
                    double expected = 0, magnitude = 0;
                    for (var c = 0; c < cols; c++)
                    {
                        expected += (double)x[(t * cols) + c] * stored[(r * cols) + c];
                        magnitude += Math.Abs((double)x[(t * cols) + c] * stored[(r * cols) + c]);
                    }

                    Assert.True(Math.Abs(y[(t * rows) + r] - expected) <= 1e-5 * Math.Max(1, magnitude), $"y[{t},{r}] = {y[(t * rows) + r]}, expected {expected}");
                }
            }
        }
        finally
        {
            handle.Free();
        }
    }

    [Fact]
    public void Too_short_buffers_are_refused()
    {
        var matrix = WeightMatrix.FromArray(new float[6], 2, 3);
        Assert.Throws<ArgumentException>(() => MatMul.Multiply(new float[5], 2, matrix, new float[4]));
        Assert.Throws<ArgumentException>(() => MatMul.Multiply(new float[6], 2, matrix, new float[3]));
    }

    [Fact]
    public void Slicing_rows_stays_in_bounds()
    {
        var matrix = WeightMatrix.FromArray([1, 2, 3, 4, 5, 6], 3, 2);
        Assert.Equal([3f, 4f, 5f, 6f], matrix.SliceRows(1, 2).ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => matrix.SliceRows(2, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => matrix.SliceRows(-1, 1));
    }

    /// <summary>The weights stored in <paramref name="dtype"/>, and the values that storage holds.</summary>
    private static (WeightMatrix Matrix, GCHandle Handle, float[] Stored) Store(float[] weights, int rows, int cols, DType dtype)
    {
        object buffer = dtype switch
        {
            DType.F32 => weights,
            DType.BF16 => weights.Select(DTypeConvert.SingleToBFloat16).ToArray(),
            _ => weights.Select(w => (Half)w).ToArray(),
        };
        var stored = dtype switch
        {
            DType.F32 => weights,
            DType.BF16 => ((ushort[])buffer).Select(DTypeConvert.BFloat16ToSingle).ToArray(),
            _ => ((Half[])buffer).Select(h => (float)h).ToArray(),
        };
        var handle = GCHandle.Alloc(buffer, GCHandleType.Pinned);
        return (new WeightMatrix(handle.AddrOfPinnedObject(), rows, cols, dtype), handle, stored);
    }
}
