using System.Numerics.Tensors;

namespace Orleans.MoE.Tensors.Cpu;

public static class Normalization
{
    /// <summary>
    /// RMSNorm of each row of <paramref name="x"/> (width = weight length):
    /// y = x / sqrt(mean(x²) + eps) · weight, computed in f32 as the reference does.
    /// <paramref name="y"/> may alias <paramref name="x"/>.
    /// </summary>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y)
    {
        var width = weight.Length;
        if (x.Length % width != 0 || y.Length < x.Length)
        {
            throw new ArgumentException($"RMSNorm over width {width}: input has {x.Length} elements, output {y.Length}");
        }

        for (var offset = 0; offset < x.Length; offset += width)
        {
            var row = x.Slice(offset, width);
            var output = y.Slice(offset, width);
            var meanSquare = TensorPrimitives.SumOfSquares(row) / width;
            var scale = 1f / MathF.Sqrt(meanSquare + eps);
            TensorPrimitives.Multiply(row, scale, output);
            TensorPrimitives.Multiply(output, weight, output);
        }
    }
}
