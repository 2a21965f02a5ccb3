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
        if (Bias is { } b)
        {
            for (var t = 0; t < tokens; t++)
            {
                var row = y.Slice(t * OutFeatures, OutFeatures);
                TensorPrimitives.Add(row, b, row);
            }
        }
    }

    public float[] Forward(ReadOnlySpan<float> x, int tokens)
    {
        var y = new float[tokens * OutFeatures];
        Forward(x, tokens, y);
        return y;
    }
}
