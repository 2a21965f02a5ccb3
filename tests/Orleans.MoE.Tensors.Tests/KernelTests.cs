using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Tensors.Tests;

public sealed class KernelTests
{
    [Fact]
    public void RmsNorm_divides_by_the_root_mean_square_and_scales()
    {
        float[] x = [1, 2, 3, 4, -1, -1, -1, -1];
        float[] weight = [1, 2, 0.5f, 1];
        var y = new float[8];
        Normalization.RmsNorm(x, weight, 1e-6f, y);
        var rms = MathF.Sqrt((1 + 4 + 9 + 16) / 4f + 1e-6f);
        Assert.Equal(1 / rms, y[0], 6);
        Assert.Equal(2 * 2 / rms, y[1], 6);
        Assert.Equal(0.5f * 3 / rms, y[2], 6);
        Assert.Equal(-2f / MathF.Sqrt(1 + 1e-6f), y[5], 5);
        Assert.Throws<ArgumentException>(() => Normalization.RmsNorm(new float[5], weight, 1e-6f, new float[5]));
    }

    [Fact]
    public void SwiGlu_is_silu_of_gate_times_up()
    {
        float[] gate = [-2, 0, 1, 3];
        float[] up = [1, 5, 2, -1];
        Activations.SwiGlu(gate, up);
        float Silu(float v) => v / (1 + MathF.Exp(-v));
        Assert.Equal(Silu(-2) * 1, gate[0], 6);
        Assert.Equal(0f, gate[1], 6);
        Assert.Equal(Silu(1) * 2, gate[2], 6);
        Assert.Equal(Silu(3) * -1, gate[3], 6);
    }

    [Fact]
    public void Softmax_normalises_each_row()
    {
        float[] x = [1, 2, 3, 1000, 1000, 1000];
        Activations.Softmax(x, 3);
        var e = new[] { MathF.Exp(1), MathF.Exp(2), MathF.Exp(3) };
        Assert.Equal(e[2] / e.Sum(), x[2], 6);
        Assert.All(x[3..], v => Assert.Equal(1f / 3, v, 6));
    }

    [Fact]
    public void Top_k_is_ordered_prefers_lower_indices_on_ties_and_skips_nan()
    {
        var indices = new int[3];
        TopK.Select([0.5f, float.NaN, 2f, 0.5f, 2f, -1f], indices);
        Assert.Equal([2, 4, 0], indices);
        Assert.Throws<ArgumentException>(() => TopK.Select([1f, 2f], new int[3]));
    }

    [Fact]
    public void Position_zero_is_the_identity()
    {
        var rope = new RotaryEmbedding(RotaryEmbedding.DefaultInverseFrequencies(8, 10000), RopeLayout.Half);
        float[] x = [1, 2, 3, 4, 5, 6, 7, 8];
        rope.Apply(x, 1, 8, 0, 0);
        Assert.Equal([1f, 2, 3, 4, 5, 6, 7, 8], x);
    }

    [Fact]
    public void Interleaved_rope_is_half_rope_on_the_deinterleaved_vector()
    {
        var frequencies = RotaryEmbedding.DefaultInverseFrequencies(8, 10000);
        float[] interleaved = [1, 2, 3, 4, 5, 6, 7, 8];
        float[] deinterleaved = [1, 3, 5, 7, 2, 4, 6, 8];
        new RotaryEmbedding(frequencies, RopeLayout.Interleaved).Apply(interleaved, 1, 8, 0, 7);
        new RotaryEmbedding(frequencies, RopeLayout.Half).Apply(deinterleaved, 1, 8, 0, 7);
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(deinterleaved[i], interleaved[2 * i], 5);
            Assert.Equal(deinterleaved[i + 4], interleaved[(2 * i) + 1], 5);
        }
    }

    [Fact]
    public void Rope_rotates_only_the_dims_after_the_offset_of_each_head()
    {
        var rope = new RotaryEmbedding(RotaryEmbedding.DefaultInverseFrequencies(2, 10000), RopeLayout.Half);
        float[] x = [9, 9, 1, 0, 9, 9, 0, 1];
        rope.Apply(x, 2, 4, 2, 3);
        Assert.Equal([9f, 9f, MathF.Cos(3), MathF.Sin(3), 9f, 9f, -MathF.Sin(3), MathF.Cos(3)], x.Select(v => MathF.Round(v, 5)).ToArray(), new ToleranceComparer());
    }

    [Theory]
    [InlineData(1.0f, 0x3F80)]
    [InlineData(-2.5f, 0xC020)]
    [InlineData(1.00390625f, 0x3F80)]
    [InlineData(1.01171875f, 0x3F82)]
    [InlineData(float.MaxValue, 0x7F80)]
    [InlineData(3.3895314e38f, 0x7F7F)]
    public void Bf16_rounds_to_nearest_even(float value, int bits)
    {
        Assert.Equal((ushort)bits, DTypeConvert.SingleToBFloat16(value));
    }

    [Fact]
    public void Bf16_nan_stays_nan_and_widening_is_exact()
    {
        Assert.True(float.IsNaN(DTypeConvert.BFloat16ToSingle(DTypeConvert.SingleToBFloat16(float.NaN))));
        ushort[] bits = [0x3F80, 0xC020, 0x0001, 0x7F7F];
        var widened = new float[bits.Length + 13];
        var source = Enumerable.Repeat(bits, 5).SelectMany(b => b).Take(widened.Length).ToArray();
        DTypeConvert.BFloat16ToSingle(source, widened);
        Assert.All(widened.Select((v, i) => (v, i)), p => Assert.Equal(BitConverter.Int32BitsToSingle(source[p.i] << 16), p.v));
    }

    private sealed class ToleranceComparer : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) < 1e-4;

        public int GetHashCode(float value) => 0;
    }
}
