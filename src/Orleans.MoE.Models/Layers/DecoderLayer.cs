namespace Orleans.MoE.Models.Layers;

/// <summary>A pre-norm decoder layer: h += attention(norm(h)); h += ffn(norm(h)).</summary>
public sealed class DecoderLayer(RmsNorm inputNorm, IAttention attention, RmsNorm postAttentionNorm, IFeedForward feedForward)
{
    public IAttention Attention { get; } = attention;

    public IFeedForward FeedForward { get; } = feedForward;

    public void Forward(Span<float> hidden, int tokens, LayerCache cache, LayerTrace? trace)
    {
        var normed = new float[hidden.Length];
        var delta = new float[hidden.Length];
        inputNorm.Forward(hidden, normed);
        Attention.Forward(normed, tokens, cache, delta);
        Add(hidden, delta);
        postAttentionNorm.Forward(hidden, normed);
        FeedForward.Forward(normed, tokens, delta, trace);
        Add(hidden, delta);
    }

    private static void Add(Span<float> hidden, ReadOnlySpan<float> delta) =>
        System.Numerics.Tensors.TensorPrimitives.Add(hidden, delta, hidden);
}
