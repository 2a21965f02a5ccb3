using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Layers;

/// <summary>Where an architecture normalises queries and keys before RoPE.</summary>
public enum QueryKeyNorm
{
    None,

    /// <summary>RMSNorm over each head (Qwen3-MoE's q_norm/k_norm of width head_dim).</summary>
    PerHead,

    /// <summary>RMSNorm over the whole projection (OLMoE's q_norm/k_norm of width heads·head_dim).</summary>
    WholeProjection,
}

/// <summary>
/// Multi-head attention with grouped key/value heads (Mixtral, Qwen2/3-MoE, OLMoE):
/// q, k, v projections (optionally biased), optional q/k RMSNorm, optional clipping, RoPE, causal
/// attention over the cache, output projection.
/// </summary>
public sealed class GroupedQueryAttention(
    Linear q, Linear k, Linear v, Linear o,
    int heads, int kvHeads, int headDim, RotaryEmbedding rope,
    QueryKeyNorm norm = QueryKeyNorm.None, RmsNorm? qNorm = null, RmsNorm? kNorm = null,
    float? clip = null, int? slidingWindow = null) : IAttention
{
    private readonly float _scale = 1f / MathF.Sqrt(headDim);

    // The attention's definition, for backends that run it elsewhere.
    public Linear Q => q;
    public Linear K => k;
    public Linear V => v;
    public Linear O => o;
    public int Heads => heads;
    public int KeyValueHeads => kvHeads;
    public int HeadDim => headDim;
    public RotaryEmbedding Rope => rope;
    public QueryKeyNorm Norm => norm;
    public RmsNorm? QNorm => qNorm;
    public RmsNorm? KNorm => kNorm;
    public float? Clip => clip;
    public int? SlidingWindow => slidingWindow;
    public float Scale => _scale;

    public (int KeyWidth, int ValueWidth) CacheShape => (kvHeads * headDim, kvHeads * headDim);

    public void Forward(ReadOnlySpan<float> x, int tokens, LayerCache cache, Span<float> output)
    {
        var kvWidth = kvHeads * headDim;
        var queryLength = tokens * heads * headDim;
        var projected = new float[queryLength + (2 * tokens * kvWidth)];
        Linear.ForwardEach(x, tokens, [q, k, v], projected);
        var queries = projected.AsMemory(0, queryLength);
        var keys = projected.AsSpan(queryLength, tokens * kvWidth);
        var values = projected.AsSpan(queryLength + (tokens * kvWidth));
        if (norm != QueryKeyNorm.None)
        {
            qNorm!.ForwardInPlace(queries.Span);
            kNorm!.ForwardInPlace(keys);
        }

        if (clip is { } c)
        {
            Clamp(queries.Span, c);
            Clamp(keys, c);
            Clamp(values, c);
        }

        var start = cache.Length;
        for (var t = 0; t < tokens; t++)
        {
            rope.Apply(queries.Span.Slice(t * heads * headDim, heads * headDim), heads, headDim, 0, start + t);
            rope.Apply(keys.Slice(t * kvWidth, kvWidth), kvHeads, headDim, 0, start + t);
            cache.Write(start + t, keys.Slice(t * kvWidth, kvWidth), values.Slice(t * kvWidth, kvWidth));
        }

        var attended = new float[tokens * heads * headDim];
        ScaledDotProductAttention.Compute(queries, cache, attended, tokens, start, heads, kvHeads, headDim, headDim, _scale, slidingWindow);
        o.Forward(attended, tokens, output);
    }

    private static void Clamp(Span<float> x, float limit)
    {
        foreach (ref var value in x)
        {
            value = Math.Clamp(value, -limit, limit);
        }
    }
}
