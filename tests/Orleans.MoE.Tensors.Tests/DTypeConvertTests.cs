namespace Orleans.MoE.Tensors.Tests;

public sealed unsafe class DTypeConvertTests
{
    [Theory]
    [InlineData(0x3F800000u, 0x3F80)] // 1.0 is exact
    [InlineData(0x3F808000u, 0x3F80)] // halfway, the even neighbour is below
    [InlineData(0x3F818000u, 0x3F82)] // halfway, the even neighbour is above
    [InlineData(0x3F807FFFu, 0x3F80)] // just below halfway
    [InlineData(0x3F808001u, 0x3F81)] // just above halfway
    [InlineData(0xBF808000u, 0xBF80)] // negative ties round the magnitude to even too
    [InlineData(0xBF818000u, 0xBF82)]
    [InlineData(0xC0200000u, 0xC020)] // -2.5
    [InlineData(0x3FFFFFFFu, 0x4000)] // rounding up carries into the exponent
    [InlineData(0x7F7F7FFFu, 0x7F7F)] // largest finite bf16
    [InlineData(0x7F7FFFFFu, 0x7F80)] // float.MaxValue overflows to infinity
    [InlineData(0x7F7F8000u, 0x7F80)] // a tie at the top rounds to the even neighbour: infinity
    [InlineData(0x7F800000u, 0x7F80)] // +inf
    [InlineData(0xFF800000u, 0xFF80)] // -inf
    [InlineData(0x00000000u, 0x0000)]
    [InlineData(0x80000000u, 0x8000)] // -0 keeps its sign
    [InlineData(0x00008000u, 0x0000)] // subnormal tie to even (zero)
    [InlineData(0x00018000u, 0x0002)] // subnormal tie to even (up)
    [InlineData(0x00008001u, 0x0001)]
    [InlineData(0x007FFFFFu, 0x0080)] // largest subnormal rounds up to the smallest normal
    public void Bf16_rounds_to_nearest_even(uint floatBits, int bf16Bits)
    {
        Assert.Equal((ushort)bf16Bits, DTypeConvert.SingleToBFloat16(BitConverter.UInt32BitsToSingle(floatBits)));
    }

    [Theory]
    [InlineData(0x7FC00000u)]
    [InlineData(0xFFC00000u)]
    [InlineData(0x7F800001u)] // a signalling NaN whose payload lies only in the dropped bits
    [InlineData(0x7FFFFFFFu)] // would round up into the sign bit if treated as a number
    public void Bf16_nan_stays_nan_with_its_sign(uint floatBits)
    {
        var bits = DTypeConvert.SingleToBFloat16(BitConverter.UInt32BitsToSingle(floatBits));
        Assert.True(float.IsNaN(DTypeConvert.BFloat16ToSingle(bits)), $"0x{bits:X4} is not NaN");
        Assert.Equal(floatBits >> 31, (uint)bits >> 15);
    }

    [Fact]
    public void Bf16_rounding_agrees_with_an_exact_reference_on_random_floats()
    {
        var random = new Random(1234);
        for (var n = 0; n < 200_000; n++)
        {
            var bits = (uint)random.NextInt64(0, 1L << 32);
            if ((bits & 0x7F800000) == 0x7F800000)
            {
                continue; // inf and NaN are covered above
            }

            Assert.Equal(ReferenceBFloat16(bits), DTypeConvert.SingleToBFloat16(BitConverter.UInt32BitsToSingle(bits)));
        }
    }

    [Fact]
    public void Widening_bf16_is_exact_at_every_length()
    {
        var random = new Random(2);
        for (var length = 0; length <= 40; length++)
        {
            var source = Enumerable.Range(0, length).Select(_ => (ushort)random.Next(0, 0x10000)).ToArray();
            var widened = new float[length];
            DTypeConvert.BFloat16ToSingle(source, widened);
            for (var i = 0; i < length; i++)
            {
                Assert.Equal((uint)source[i] << 16, BitConverter.SingleToUInt32Bits(widened[i]));
            }
        }

        Assert.Throws<ArgumentException>(() => DTypeConvert.BFloat16ToSingle(new ushort[3], new float[2]));
    }

    [Fact]
    public void Known_bf16_bit_patterns_widen_to_their_values()
    {
        ushort[] bits = [0x3F80, 0xBFC0, 0x4049, 0x0001, 0x0080, 0x7F7F, 0xFF80, 0xC2F7];
        float[] expected = [1f, -1.5f, 3.140625f, MathF.Pow(2, -133), MathF.Pow(2, -126), 3.3895314e38f, float.NegativeInfinity, -123.5f];
        var result = new float[bits.Length];
        fixed (ushort* p = bits)
        {
            DTypeConvert.ToSingle((nint)p, DType.BF16, result);
        }

        Assert.Equal(expected, result);
    }

    [Fact]
    public void Known_f16_bit_patterns_widen_to_their_values()
    {
        ushort[] bits = [0x3C00, 0xC000, 0x0001, 0x0400, 0x7BFF, 0xFBFF, 0x3555, 0x7C00, 0x8000];
        float[] expected = [1f, -2f, MathF.Pow(2, -24), MathF.Pow(2, -14), 65504f, -65504f, 0.333251953125f, float.PositiveInfinity, -0f];
        var result = new float[bits.Length];
        fixed (ushort* p = bits)
        {
            DTypeConvert.ToSingle((nint)p, DType.F16, result);
        }

        Assert.Equal(expected, result);
        Assert.True(float.IsNegative(result[^1]));
    }

    [Fact]
    public void F32_is_copied_and_integers_are_not_converted()
    {
        float[] values = [1.5f, -0f, float.Epsilon, float.MaxValue];
        var result = new float[values.Length];
        fixed (float* p = values)
        {
            DTypeConvert.ToSingle((nint)p, DType.F32, result);
        }

        Assert.Equal(values, result);
        var longs = new long[2];
        Assert.Throws<NotSupportedException>(() =>
        {
            fixed (long* p = longs)
            {
                DTypeConvert.ToSingle((nint)p, DType.I64, new float[2]);
            }
        });
    }

    /// <summary>Round to nearest, ties to even, done on exact values (doubles hold every f32 and bf16 exactly).</summary>
    private static ushort ReferenceBFloat16(uint bits)
    {
        var sign = (ushort)((bits >> 16) & 0x8000);
        var magnitude = Math.Abs((double)BitConverter.UInt32BitsToSingle(bits));
        var below = (ushort)((bits >> 16) & 0x7FFF);
        var above = (ushort)(below + 1);
        var low = (double)BitConverter.UInt32BitsToSingle((uint)below << 16);
        // Past the largest finite bf16 the next step up is infinity, reached at 2^128 for rounding purposes.
        var high = above == 0x7F80 ? Math.Pow(2, 128) : (double)BitConverter.UInt32BitsToSingle((uint)above << 16);
        var chosen = (magnitude - low).CompareTo(high - magnitude) switch
        {
            < 0 => below,
            > 0 => above,
            _ => (below & 1) == 0 ? below : above,
        };
        return (ushort)(sign | chosen);
    }
}
