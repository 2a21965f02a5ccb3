namespace Orleans.MoE.Models.Layers;

/// <summary>The feed-forward half of a decoder layer: a dense MLP or a sparse MoE block.</summary>
public interface IFeedForward
{
    /// <summary>output[T, hidden] = FFN(x[T, hidden]).</summary>
    void Forward(ReadOnlySpan<float> x, int tokens, Span<float> output, LayerTrace? trace = null);
}

/// <summary>The attention half of a decoder layer, which owns its slice of the KV cache.</summary>
public interface IAttention
{
    /// <summary>Width of one position's keys and values in the cache.</summary>
    (int KeyWidth, int ValueWidth) CacheShape { get; }

    /// <summary>output[T, hidden] = attention of x[T, hidden] at positions [cache.Length, cache.Length + T), appending to the cache.</summary>
    void Forward(ReadOnlySpan<float> x, int tokens, LayerCache cache, Span<float> output);
}

/// <summary>What a layer reports for verification: the MoE router's raw logits.</summary>
public sealed class LayerTrace
{
    public float[]? RouterLogits { get; set; }
}
