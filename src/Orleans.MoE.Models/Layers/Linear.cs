using System.Numerics.Tensors;
using Orleans.MoE.Tensors;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Layers;

/// <summary>y = x · Wᵀ (+ b), W stored [out, in] in its checkpoint dtype; <see cref="Source"/> names W's tensor in the checkpoint.</summary>
public sealed class Linear(WeightMatrix weight, float[]? bias = null, string? source = null)
{
    public WeightMatrix Weight { get; } = weight;

    /// <summary>The checkpoint tensor the weight was read from, when it came from one.</summary>
    public string? Source { get; } = source;

    public float[]? Bias { get; } = bias;

    public int InFeatures => Weight.Cols;

    public int OutFeatures => Weight.Rows;

    public void Forward(ReadOnlySpan<float> x, int tokens, Span<float> y)
    {
        MatMul.Multiply(x, tokens, Weight, y);
        AddBias(y, tokens);
    }

    /// <summary>
    /// The products of the same x with several layers of its width, one after another in y
    /// ([tokens, out of the first], then [tokens, out of the second], ...), computed as one product
    /// (see <see cref="MatMul.MultiplyEach"/>).
    /// </summary>
    public static void ForwardEach(ReadOnlySpan<float> x, int tokens, ReadOnlySpan<Linear> layers, Span<float> y)
    {
        Span<WeightMatrix> weights = stackalloc WeightMatrix[layers.Length];
        for (var i = 0; i < layers.Length; i++)
        {
            weights[i] = layers[i].Weight;
        }

        MatMul.MultiplyEach(x, tokens, weights, y);
        foreach (var layer in layers)
        {
            layer.AddBias(y, tokens);
            y = y[(tokens * layer.OutFeatures)..];
        }
    }

    public float[] Forward(ReadOnlySpan<float> x, int tokens)
    {
        var y = new float[tokens * OutFeatures];
        Forward(x, tokens, y);
        return y;
    }

    /// <summary>y[t] += b for each of the tokens' rows of this layer's output (nothing without a bias).</summary>
    private void AddBias(Span<float> y, int tokens)
    {
        if (Bias is { } b)
        {
            for (var t = 0; t < tokens; t++)
            {
                var row = y.Slice(t * OutFeatures, OutFeatures);
                TensorPrimitives.Add(row, b, row);
            }
        }
    }
}
