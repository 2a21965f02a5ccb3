using System.Numerics.Tensors;

namespace Orleans.MoE.Tensors.Cpu;

public static class Activations
{
    /// <summary>SwiGLU in place: gate[i] = silu(gate[i]) · up[i], where silu(x) = x · sigmoid(x).</summary>
    public static void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        if (up.Length != gate.Length)
        {
            throw new ArgumentException("gate and up must have the same length");
        }

        // silu(g) = g / (1 + e^-g)
        Span<float> buffer = gate.Length <= 1024 ? stackalloc float[gate.Length] : new float[gate.Length];
        TensorPrimitives.Negate(gate, buffer);
        TensorPrimitives.Exp(buffer, buffer);
        TensorPrimitives.Add(buffer, 1f, buffer);
        TensorPrimitives.Divide(gate, buffer, gate);
        TensorPrimitives.Multiply(gate, up, gate);
    }

    /// <summary>Softmax in place over each row of <paramref name="width"/> values, shifted by the row's maximum so large logits do not overflow.</summary>
    public static void Softmax(Span<float> x, int width)
    {
        for (var offset = 0; offset < x.Length; offset += width)
        {
            var row = x.Slice(offset, width);
            TensorPrimitives.Subtract(row, TensorPrimitives.Max(row), row);
            TensorPrimitives.Exp(row, row);
            TensorPrimitives.Divide(row, TensorPrimitives.Sum(row), row);
        }
    }

    /// <summary>Logistic sigmoid in place.</summary>
    public static void Sigmoid(Span<float> x) => TensorPrimitives.Sigmoid(x, x);
}
