using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Layers;

/// <summary>RMSNorm over the last dimension (the weight's length).</summary>
public sealed class RmsNorm(float[] weight, float eps)
{
    public int Width => weight.Length;

    /// <summary>The learned scale (one per feature), for backends that keep their own copy.</summary>
    public ReadOnlyMemory<float> Weight => weight;

    public float Eps => eps;

    /// <summary>Normalises every row of x into y (may alias).</summary>
    public void Forward(ReadOnlySpan<float> x, Span<float> y) => Normalization.RmsNorm(x, weight, eps, y);

    public void ForwardInPlace(Span<float> x) => Normalization.RmsNorm(x, weight, eps, x);
}
