using System.Runtime.InteropServices;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Tensors.Tests;

/// <summary>
/// MatMul.Multiply against a naive double-precision product of the values the weights hold in their
/// stored dtype. The error of each output is measured relative to Σₖ |x[t,k] · W[n,k]|, the scale a
/// dot product's rounding error is bounded by (relative to the result itself, cancellation would make
/// any bound meaningless).
/// </summary>
public sealed class MatMulTests
{
    private static readonly int[] s_tokenCounts = [1, 2, 3, 4, 5, 33, 64];

    /// <summary>
    /// (rows N, cols K): odd K, even K (bf16 pairs in the tiled kernels) with N no multiple of 8 (rows past
    /// the last tile), and N below and above the parallel thresholds (two row blocks of 16, 2²⁰ multiply-adds).
    /// </summary>
    private static readonly (int Rows, int Cols)[] s_shapes = [(3, 7), (40, 17), (300, 100), (3, 257), (40, 257), (300, 257), (19, 64), (1, 2), (300, 2050)];

    public static TheoryData<DType, int, int, int> Products()
    {
        var data = new TheoryData<DType, int, int, int>();
        foreach (var dtype in new[] { DType.F32, DType.BF16, DType.F16 })
        {
            foreach (var tokens in s_tokenCounts)
            {
                foreach (var (rows, cols) in s_shapes)
                {
                    data.Add(dtype, tokens, rows, cols);
                }
            }

            // Large enough to run in parallel even for a single token, with a K that is no multiple of 8 or 16.
            data.Add(dtype, 1, 4096, 300);
            data.Add(dtype, 8, 1030, 1025);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Products))]
    public void The_product_matches_a_double_precision_reference(DType dtype, int tokens, int rows, int cols)
    {
        var random = new Random((rows * 31) + cols + (tokens * 7919));
        var weights = RandomValues(random, rows * cols, 0.5);
        var x = RandomValues(random, tokens * cols, 1.0);
        using var stored = StoredMatrix.Create(weights, rows, cols, dtype);
        var y = new float[tokens * rows];
        MatMul.Multiply(x, tokens, stored.Matrix, y);
        AssertMatchesReference(x, tokens, stored.Values, rows, cols, y);
    }

    [Fact]
    public void Outputs_past_the_product_are_left_alone_and_zero_tokens_do_nothing()
    {
        using var stored = StoredMatrix.Create([1, 2, 3, 4, 5, 6], 2, 3, DType.F32);
        var y = new float[] { 9, 9, 9, 9, 9, 9 };
        MatMul.Multiply([1, 1, 1, 10, 0, 0], 2, stored.Matrix, y);
        Assert.Equal([6f, 15f, 10f, 40f, 9f, 9f], y);

        MatMul.Multiply([], 0, stored.Matrix, y);
        Assert.Equal([6f, 15f, 10f, 40f, 9f, 9f], y);
    }

    [Theory]
    [InlineData(DType.F32, 2)]
    [InlineData(DType.F32, 5)]
    [InlineData(DType.BF16, 2)]
    [InlineData(DType.BF16, 5)]
    [InlineData(DType.F16, 2)]
    [InlineData(DType.F16, 5)]
    public void A_slice_of_rows_multiplies_as_those_rows_of_the_whole(DType dtype, int tokens)
    {
        const int Rows = 50, Cols = 33, Start = 17, Count = 21;
        var random = new Random(5);
        using var stored = StoredMatrix.Create(RandomValues(random, Rows * Cols, 1), Rows, Cols, dtype);
        var x = RandomValues(random, tokens * Cols, 1);
        var slice = stored.Matrix.SliceRows(Start, Count);
        Assert.Equal(stored.Matrix.Data + (Start * Cols * dtype.Size()), slice.Data);

        var y = new float[tokens * Count];
        MatMul.Multiply(x, tokens, slice, y);
        AssertMatchesReference(x, tokens, stored.Values[(Start * Cols)..((Start + Count) * Cols)], Count, Cols, y);
    }

    [Fact]
    public void Too_short_buffers_are_refused()
    {
        var matrix = WeightMatrix.FromArray(new float[6], 2, 3);
        Assert.Throws<ArgumentException>(() => MatMul.Multiply(new float[5], 2, matrix, new float[4]));
        Assert.Throws<ArgumentException>(() => MatMul.Multiply(new float[6], 2, matrix, new float[3]));
    }

    [Fact]
    public void Matrices_of_another_width_than_the_first_are_refused()
    {
        using var a = StoredMatrix.Create([1, 2, 3, 4, 5, 6], 2, 3, DType.F32);
        using var b = StoredMatrix.Create([1, 2, 3, 4], 2, 2, DType.F32);
        var error = Assert.Throws<ArgumentException>(() => MatMul.MultiplyEach(new float[3], 1, [a.Matrix, b.Matrix], new float[4]));
        Assert.Contains("width 3, not 2", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => MatMul.MultiplyEach(new float[3], 1, [a.Matrix, a.Matrix], new float[3]));
    }

    internal static float[] RandomValues(Random random, int count, double scale) =>
        Enumerable.Range(0, count).Select(_ => (float)(((random.NextDouble() * 2) - 1) * scale)).ToArray();

    internal static void AssertMatchesReference(float[] x, int tokens, float[] weights, int rows, int cols, float[] y)
    {
        for (var t = 0; t < tokens; t++)
        {
            for (var r = 0; r < rows; r++)
            {
                double expected = 0, magnitude = 0;
                for (var c = 0; c < cols; c++)
                {
                    var term = (double)x[(t * cols) + c] * weights[(r * cols) + c];
                    expected += term;
                    magnitude += Math.Abs(term);
                }

                var actual = y[(t * rows) + r];
                Assert.True(Math.Abs(actual - expected) <= 1e-5 * magnitude, $"y[{t}, {r}] = {actual}, expected {expected} (Σ|terms| {magnitude})");
            }
        }
    }
}

/// <summary>Weights stored (pinned) in a dtype, with the f32 values that storage holds.</summary>
internal sealed class StoredMatrix : IDisposable
{
    private GCHandle _handle;

    private StoredMatrix(GCHandle handle, WeightMatrix matrix, float[] values)
    {
        _handle = handle;
        Matrix = matrix;
        Values = values;
    }

    public WeightMatrix Matrix { get; }

    public float[] Values { get; }

    public static StoredMatrix Create(float[] weights, int rows, int cols, DType dtype)
    {
        object buffer = dtype switch
        {
            DType.F32 => weights.ToArray(),
            DType.BF16 => weights.Select(DTypeConvert.SingleToBFloat16).ToArray(),
            DType.F16 => weights.Select(w => (Half)w).ToArray(),
            _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
        };
        var values = buffer switch
        {
            float[] f => f.ToArray(),
            ushort[] b => b.Select(DTypeConvert.BFloat16ToSingle).ToArray(),
            Half[] h => h.Select(v => (float)v).ToArray(),
            _ => throw new InvalidOperationException(),
        };
        var handle = GCHandle.Alloc(buffer, GCHandleType.Pinned);
        return new StoredMatrix(handle, new WeightMatrix(handle.AddrOfPinnedObject(), rows, cols, dtype), values);
    }

    public void Dispose() => _handle.Free();
}
