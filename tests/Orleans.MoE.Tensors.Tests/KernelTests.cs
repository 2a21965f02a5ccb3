using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Tensors.Tests;

/// <summary>RMSNorm, SwiGLU, softmax and top-k against double-precision references and hand-worked cases.</summary>
public sealed class KernelTests
{
    [Fact]
    public void RmsNorm_divides_by_the_root_mean_square_and_scales()
    {
        float[] x = [1, 2, 3, 4, -1, -1, -1, -1];
        float[] weight = [1, 2, 0.5f, 1];
        var y = new float[8];
        Normalization.RmsNorm(x, weight, 1e-6f, y);
        var rms = Math.Sqrt((30 / 4.0) + 1e-6);
        Assert.Equal(1 / rms, y[0], 6);
        Assert.Equal(2 * 2 / rms, y[1], 6);
        Assert.Equal(0.5 * 3 / rms, y[2], 6);
        Assert.Equal(4 / rms, y[3], 6);
        var rms2 = Math.Sqrt(1 + 1e-6);
        Assert.Equal([-1 / rms2, -2 / rms2, -0.5 / rms2, -1 / rms2], y[4..].Select(v => (double)v), new Tolerance(1e-6));
    }

    [Fact]
    public void RmsNorm_matches_a_double_reference_row_by_row_and_may_work_in_place()
    {
        const int Width = 67, Rows = 5;
        var random = new Random(3);
        var x = Enumerable.Range(0, Width * Rows).Select(_ => (float)((random.NextDouble() * 20) - 10)).ToArray();
        var weight = Enumerable.Range(0, Width).Select(_ => (float)(random.NextDouble() + 0.5)).ToArray();
        const float Eps = 1e-5f;
        var expected = new double[x.Length];
        for (var r = 0; r < Rows; r++)
        {
            var meanSquare = x.Skip(r * Width).Take(Width).Sum(v => (double)v * v) / Width;
            var scale = 1 / Math.Sqrt(meanSquare + Eps);
            for (var i = 0; i < Width; i++)
            {
                expected[(r * Width) + i] = x[(r * Width) + i] * scale * weight[i];
            }
        }

        var y = new float[x.Length];
        Normalization.RmsNorm(x, weight, Eps, y);
        Normalization.RmsNorm(x, weight, Eps, x);
        for (var i = 0; i < x.Length; i++)
        {
            Assert.Equal(expected[i], y[i], 1e-5 * Math.Max(1, Math.Abs(expected[i])));
            Assert.Equal(y[i], x[i]);
        }
    }

    [Fact]
    public void RmsNorm_of_a_zero_row_is_zero_thanks_to_eps()
    {
        var y = new float[4];
        Normalization.RmsNorm(new float[4], [1, 1, 1, 1], 1e-6f, y);
        Assert.Equal([0f, 0f, 0f, 0f], y);
    }

    [Fact]
    public void RmsNorm_refuses_rows_that_do_not_fit_the_weight()
    {
        float[] weight = [1, 2, 0.5f, 1];
        Assert.Throws<ArgumentException>(() => Normalization.RmsNorm(new float[5], weight, 1e-6f, new float[5]));
        Assert.Throws<ArgumentException>(() => Normalization.RmsNorm(new float[8], weight, 1e-6f, new float[4]));
    }

    [Fact]
    public void SwiGlu_is_silu_of_gate_times_up()
    {
        float[] gate = [-2, 0, 1, 3, -100, 100, 0.5f];
        float[] up = [1, 5, 2, -1, 3, 0.25f, -4];
        var expected = gate.Zip(up, (g, u) => g / (1 + Math.Exp(-g)) * u).ToArray();
        Activations.SwiGlu(gate, up);
        for (var i = 0; i < gate.Length; i++)
        {
            Assert.False(float.IsNaN(gate[i]));
            Assert.Equal(expected[i], gate[i], 1e-6 * Math.Max(1, Math.Abs(expected[i])));
        }
    }

    [Fact]
    public void SwiGlu_handles_long_vectors_and_refuses_mismatched_lengths()
    {
        var random = new Random(9);
        var gate = Enumerable.Range(0, 3000).Select(_ => (float)((random.NextDouble() * 16) - 8)).ToArray();
        var up = Enumerable.Range(0, 3000).Select(_ => (float)((random.NextDouble() * 4) - 2)).ToArray();
        var expected = gate.Zip(up, (g, u) => g / (1 + Math.Exp(-g)) * u).ToArray();
        Activations.SwiGlu(gate, up);
        Assert.All(Enumerable.Range(0, gate.Length), i => Assert.Equal(expected[i], gate[i], 1e-5));
        Assert.Throws<ArgumentException>(() => Activations.SwiGlu(new float[3], new float[4]));
    }

    [Fact]
    public void Softmax_normalises_each_row()
    {
        float[] x = [1, 2, 3, 1000, 1000, 1000, -5, 0, 5];
        Activations.Softmax(x, 3);
        double[] rows = [1, 2, 3, -5, 0, 5];
        var first = rows[..3].Select(Math.Exp).ToArray();
        var last = rows[3..].Select(Math.Exp).ToArray();
        Assert.Equal(first[0] / first.Sum(), x[0], 6);
        Assert.Equal(first[2] / first.Sum(), x[2], 6);
        Assert.All(x[3..6], v => Assert.Equal(1f / 3, v, 6));
        Assert.Equal(last[0] / last.Sum(), x[6], 6);
        Assert.Equal(last[2] / last.Sum(), x[8], 6);
        for (var r = 0; r < 3; r++)
        {
            Assert.Equal(1f, x[(r * 3)..((r * 3) + 3)].Sum(), 6);
        }
    }

    [Fact]
    public void Softmax_of_large_and_minus_infinite_logits_stays_finite()
    {
        float[] x = [88.8f, 89f, float.NegativeInfinity, -1e30f, 1e30f, 1e30f];
        Activations.Softmax(x, 3);
        var e = Math.Exp(-0.2);
        Assert.Equal(e / (1 + e), x[0], 5);
        Assert.Equal(1 / (1 + e), x[1], 5);
        Assert.Equal(0f, x[2]);
        Assert.Equal([0f, 0.5f, 0.5f], x[3..]);
    }

    [Fact]
    public void Top_k_is_ordered_and_prefers_lower_indices_on_ties()
    {
        var indices = new int[4];
        TopK.Select([0.5f, -1f, 2f, 0.5f, 2f, -3f, 0.5f], indices);
        Assert.Equal([2, 4, 0, 3], indices);
    }

    [Fact]
    public void Top_k_never_chooses_nan()
    {
        var indices = new int[2];
        TopK.Select([float.NaN, float.NaN, -7f, float.NaN, -8f, float.NaN], indices);
        Assert.Equal([2, 4], indices);

        var one = new int[1];
        TopK.Select([float.NaN, -1e30f], one);
        Assert.Equal(1, one[0]);
    }

    [Fact]
    public void Top_k_of_all_values_sorts_them_and_more_than_all_is_refused()
    {
        var indices = new int[5];
        TopK.Select([3f, -1f, 4f, 1f, 5f], indices);
        Assert.Equal([4, 2, 0, 3, 1], indices);
        Assert.Throws<ArgumentException>(() => TopK.Select([1f, 2f], new int[3]));
        Assert.Throws<ArgumentException>(() => TopK.Select([], new int[1]));
    }

    [Fact]
    public void Top_k_agrees_with_a_stable_sort_on_random_values()
    {
        var random = new Random(11);
        for (var round = 0; round < 200; round++)
        {
            var n = random.Next(1, 70);
            var k = random.Next(1, Math.Min(n, 9) + 1);
            // Few distinct values, so ties are common.
            var values = Enumerable.Range(0, n).Select(_ => (float)random.Next(-5, 6)).ToArray();
            var expected = Enumerable.Range(0, n).OrderByDescending(i => values[i]).ThenBy(i => i).Take(k).ToArray();
            var indices = new int[k];
            TopK.Select(values, indices);
            Assert.Equal(expected, indices);
        }
    }

    private sealed class Tolerance(double epsilon) : IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) <= epsilon;

        public int GetHashCode(double value) => 0;
    }
}
