using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Tensors.Tests;

/// <summary>Tests that change the process-wide kernel parallelism run alone, after all other tests.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class KernelParallelismGroup
{
    public const string Name = "kernel parallelism";
}

/// <summary>
/// The product is the same however many threads share it, so the parallel path (uneven chunks of
/// row blocks over the workers) is checked even on a machine with one or two cores.
/// Restores the degree it found.
/// </summary>
[Collection(KernelParallelismGroup.Name)]
public sealed class MatMulParallelismTests : IDisposable
{
    private readonly int _degree = CpuParallelism.Degree;

    public void Dispose() => CpuParallelism.SetDegree(_degree);

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(5)]
    public void Every_degree_gives_the_reference_product(int degree)
    {
        CpuParallelism.SetDegree(degree);
        Assert.Equal(degree, CpuParallelism.Degree);
        var random = new Random(degree);
        foreach (var dtype in new[] { DType.F32, DType.BF16, DType.F16 })
        {
            // 2²⁰ multiply-adds and more, over 300 rows (19 row blocks: chunks do not divide evenly).
            foreach (var (tokens, rows, cols) in new[] { (1, 300, 4099), (3, 300, 1500), (64, 300, 257), (33, 40, 1000) })
            {
                var weights = MatMulTests.RandomValues(random, rows * cols, 0.5);
                var x = MatMulTests.RandomValues(random, tokens * cols, 1);
                using var stored = StoredMatrix.Create(weights, rows, cols, dtype);
                var y = new float[tokens * rows];
                MatMul.Multiply(x, tokens, stored.Matrix, y);
                MatMulTests.AssertMatchesReference(x, tokens, stored.Values, rows, cols, y);
            }
        }
    }

    /// <summary>
    /// A decode step's q, k and v as one product: whatever the degree, each part is exactly its matrix's
    /// product alone (rows past a matrix's last block, and matrices of several dtypes, included).
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(5)]
    public void Products_with_several_matrices_are_each_matrix_product_alone(int degree)
    {
        CpuParallelism.SetDegree(degree);
        var random = new Random(degree);
        const int Cols = 1030;
        var shapes = new[] { (Rows: 1024, DType.BF16), (Rows: 250, DType.BF16), (Rows: 7, DType.F32), (Rows: 256, DType.F16) };
        var matrices = shapes.Select(s => StoredMatrix.Create(MatMulTests.RandomValues(random, s.Rows * Cols, 0.5), s.Rows, Cols, s.Item2)).ToArray();
        try
        {
            foreach (var tokens in new[] { 1, 3, 9 })
            {
                var x = MatMulTests.RandomValues(random, tokens * Cols, 1);
                var y = new float[(tokens * shapes.Sum(s => s.Rows)) + 1];
                y[^1] = 42;
                MatMul.MultiplyEach(x, tokens, matrices.Select(m => m.Matrix).ToArray(), y);

                var offset = 0;
                foreach (var matrix in matrices)
                {
                    var alone = new float[tokens * matrix.Matrix.Rows];
                    MatMul.Multiply(x, tokens, matrix.Matrix, alone);
                    Assert.Equal(alone, y.AsSpan(offset, alone.Length).ToArray());
                    offset += alone.Length;
                }

                Assert.Equal(42, y[^1]);
            }
        }
        finally
        {
            foreach (var matrix in matrices)
            {
                matrix.Dispose();
            }
        }
    }
}
