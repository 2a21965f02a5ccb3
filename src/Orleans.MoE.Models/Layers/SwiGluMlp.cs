using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Layers;

/// <summary>The gated feed-forward of every architecture here: down(silu(gate(x)) · up(x)). Also one expert.</summary>
public sealed class SwiGluMlp(Linear gate, Linear up, Linear down) : IFeedForward
{
    public Linear Gate { get; } = gate;
    public Linear Up { get; } = up;
    public Linear Down { get; } = down;

    public long WeightBytes => Gate.Weight.ByteCount + Up.Weight.ByteCount + Down.Weight.ByteCount;

    /// <summary>Weights (multiply-adds per token) of the three projections.</summary>
    public long WeightElements => ((long)Gate.Weight.Rows * Gate.Weight.Cols) + ((long)Up.Weight.Rows * Up.Weight.Cols) + ((long)Down.Weight.Rows * Down.Weight.Cols);

    public void Forward(ReadOnlySpan<float> x, int tokens, Span<float> output, LayerTrace? trace = null)
    {
        var gate = Gate.Forward(x, tokens);
        var up = Up.Forward(x, tokens);
        Activations.SwiGlu(gate, up);
        Down.Forward(gate, tokens, output);
    }
}
