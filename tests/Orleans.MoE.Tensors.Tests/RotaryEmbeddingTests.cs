using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Tensors.Tests;

public sealed class RotaryEmbeddingTests
{
    [Fact]
    public void Default_inverse_frequencies_are_theta_to_the_minus_two_i_over_d()
    {
        var frequencies = RotaryEmbedding.DefaultInverseFrequencies(16, 10000);
        Assert.Equal(8, frequencies.Length);
        for (var i = 0; i < 8; i++)
        {
            Assert.Equal(Math.Pow(10000, -2.0 * i / 16), frequencies[i], 1e-6 * frequencies[i]);
        }
    }

    [Theory]
    [InlineData(RopeLayout.Half)]
    [InlineData(RopeLayout.Interleaved)]
    public void Position_zero_is_the_identity(RopeLayout layout)
    {
        var rope = new RotaryEmbedding(RotaryEmbedding.DefaultInverseFrequencies(8, 10000), layout);
        float[] x = [1, 2, 3, 4, 5, 6, 7, 8, -1, -2, -3, -4, -5, -6, -7, -8];
        rope.Apply(x, 2, 8, 0, 0);
        Assert.Equal([1f, 2, 3, 4, 5, 6, 7, 8, -1, -2, -3, -4, -5, -6, -7, -8], x);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(300)]
    public void Half_layout_rotates_dimension_i_with_i_plus_half(int position)
    {
        const int Dim = 8;
        var rope = new RotaryEmbedding(RotaryEmbedding.DefaultInverseFrequencies(Dim, 10000), RopeLayout.Half);
        float[] original = [0.5f, -1, 2, 0.25f, 3, 1, -0.75f, 1.5f];
        var x = original.ToArray();
        rope.Apply(x, 1, Dim, 0, position);
        for (var i = 0; i < Dim / 2; i++)
        {
            // As the reference computes it: inv_freq and position · inv_freq in f32, cos/sin of that angle.
            var angle = (double)(position * (float)Math.Pow(10000, -2.0 * i / Dim));
            var (a, b) = (original[i], original[i + (Dim / 2)]);
            Assert.Equal((a * Math.Cos(angle)) - (b * Math.Sin(angle)), x[i], 1e-5);
            Assert.Equal((b * Math.Cos(angle)) + (a * Math.Sin(angle)), x[i + (Dim / 2)], 1e-5);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(300)]
    public void Interleaved_rope_is_half_rope_on_the_deinterleaved_vector(int position)
    {
        const int Dim = 16, Heads = 3, Stride = 20, Offset = 4;
        var frequencies = RotaryEmbedding.DefaultInverseFrequencies(Dim, 10000);
        var random = new Random(position);
        var interleaved = Enumerable.Range(0, Heads * Stride).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray();

        // De-interleave each head's rotary dims: (x0, x1, x2, x3, ...) -> (x0, x2, ..., x1, x3, ...).
        var deinterleaved = interleaved.ToArray();
        for (var h = 0; h < Heads; h++)
        {
            for (var i = 0; i < Dim / 2; i++)
            {
                deinterleaved[(h * Stride) + Offset + i] = interleaved[(h * Stride) + Offset + (2 * i)];
                deinterleaved[(h * Stride) + Offset + (Dim / 2) + i] = interleaved[(h * Stride) + Offset + (2 * i) + 1];
            }
        }

        new RotaryEmbedding(frequencies, RopeLayout.Interleaved).Apply(interleaved, Heads, Stride, Offset, position);
        new RotaryEmbedding(frequencies, RopeLayout.Half).Apply(deinterleaved, Heads, Stride, Offset, position);

        // Re-interleave the half-layout result: it must equal the interleaved result exactly.
        var expected = deinterleaved.ToArray();
        for (var h = 0; h < Heads; h++)
        {
            for (var i = 0; i < Dim / 2; i++)
            {
                expected[(h * Stride) + Offset + (2 * i)] = deinterleaved[(h * Stride) + Offset + i];
                expected[(h * Stride) + Offset + (2 * i) + 1] = deinterleaved[(h * Stride) + Offset + (Dim / 2) + i];
            }
        }

        Assert.Equal(expected, interleaved);
    }

    [Fact]
    public void Rope_rotates_only_the_dims_after_the_offset_of_each_head()
    {
        var rope = new RotaryEmbedding(RotaryEmbedding.DefaultInverseFrequencies(2, 10000), RopeLayout.Half);
        float[] x = [9, 9, 1, 0, 9, 9, 0, 1];
        rope.Apply(x, 2, 4, 2, 3);
        double[] expected = [9, 9, Math.Cos(3), Math.Sin(3), 9, 9, -Math.Sin(3), Math.Cos(3)];
        Assert.All(Enumerable.Range(0, 8), i => Assert.Equal(expected[i], x[i], 1e-6));
    }

    [Fact]
    public void The_attention_scaling_multiplies_cos_and_sin()
    {
        var frequencies = RotaryEmbedding.DefaultInverseFrequencies(8, 10000);
        float[] plain = [1, 2, 3, 4, 5, 6, 7, 8];
        var scaled = plain.ToArray();
        new RotaryEmbedding(frequencies, RopeLayout.Half).Apply(plain, 1, 8, 0, 5);
        new RotaryEmbedding(frequencies, RopeLayout.Half, 1.25f).Apply(scaled, 1, 8, 0, 5);
        Assert.All(Enumerable.Range(0, 8), i => Assert.Equal(plain[i] * 1.25, scaled[i], 1e-5));
    }

    [Fact]
    public void Positions_past_the_first_table_give_the_same_rotation_as_a_fresh_table()
    {
        var frequencies = RotaryEmbedding.DefaultInverseFrequencies(8, 500000);
        var grown = new RotaryEmbedding(frequencies, RopeLayout.Half);
        grown.Apply(new float[8], 1, 8, 0, 1000);
        foreach (var position in new[] { 3, 255, 256, 999 })
        {
            float[] a = [1, 2, 3, 4, 5, 6, 7, 8];
            float[] b = [1, 2, 3, 4, 5, 6, 7, 8];
            grown.Apply(a, 1, 8, 0, position);
            new RotaryEmbedding(frequencies, RopeLayout.Half).Apply(b, 1, 8, 0, position);
            Assert.Equal(b, a);
        }
    }

    [Fact]
    public void A_rotation_keeps_the_length_of_each_pair()
    {
        var rope = new RotaryEmbedding(RotaryEmbedding.DefaultInverseFrequencies(8, 10000), RopeLayout.Interleaved);
        float[] x = [1, 2, 3, 4, 5, 6, 7, 8];
        rope.Apply(x, 1, 8, 0, 123);
        for (var i = 0; i < 4; i++)
        {
            var before = Math.Sqrt(Math.Pow((2 * i) + 1, 2) + Math.Pow((2 * i) + 2, 2));
            Assert.Equal(before, Math.Sqrt((x[2 * i] * x[2 * i]) + (x[(2 * i) + 1] * x[(2 * i) + 1])), 1e-5);
        }
    }
}
