using System.Numerics.Tensors;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Layers;

/// <summary>
/// Causal softmax(q·kᵀ·scale)·v for new queries at positions [start, start + T) against every cached
/// position up to each query's own, with grouped key/value heads (query head h reads kv head
/// h / (heads / kvHeads)) and an optional sliding window. Computed in f32 as the reference's eager path.
/// </summary>
internal static class ScaledDotProductAttention
{
    private const int MinParallelWork = 1 << 20;

    /// <param name="queries">[T, heads, keyDim]</param>
    /// <param name="cache">keys [positions, kvHeads, keyDim] and values [positions, kvHeads, valueDim]</param>
    /// <param name="output">[T, heads, valueDim]</param>
    /// <param name="window">Sliding window: a query at p sees keys at j &gt; p - window; null for all.</param>
    public static void Compute(
        float[] queries, LayerCache cache, float[] output,
        int tokens, int start, int heads, int kvHeads, int keyDim, int valueDim, float scale, int? window)
    {
        var positions = start + tokens;
        if (cache.KeyWidth != kvHeads * keyDim || cache.ValueWidth != kvHeads * valueDim)
        {
            throw new ArgumentException("the cache's shape does not match the attention's heads");
        }

        var groups = heads / kvHeads;
        var keyArray = cache.KeyBuffer;
        var valueArray = cache.ValueBuffer;

        void Head(int item, float[] scores)
        {
            var t = item / heads;
            var h = item % heads;
            var kvh = h / groups;
            var position = start + t;
            var first = window is { } w ? Math.Max(0, position - w + 1) : 0;
            var query = queries.AsSpan(((t * heads) + h) * keyDim, keyDim);
            var count = position - first + 1;
            var weights = scores.AsSpan(0, count);
            for (var j = first; j <= position; j++)
            {
                weights[j - first] = TensorPrimitives.Dot(query, keyArray.AsSpan(((j * kvHeads) + kvh) * keyDim, keyDim)) * scale;
            }

            Activations.Softmax(weights, weights.Length);
            var result = output.AsSpan(((t * heads) + h) * valueDim, valueDim);
            result.Clear();
            for (var j = first; j <= position; j++)
            {
                TensorPrimitives.MultiplyAdd(valueArray.AsSpan(((j * kvHeads) + kvh) * valueDim, valueDim), weights[j - first], result, result);
            }
        }

        var items = tokens * heads;
        if ((long)items * positions * (keyDim + valueDim) < MinParallelWork)
        {
            var scores = new float[positions];
            for (var i = 0; i < items; i++)
            {
                Head(i, scores);
            }

            return;
        }

        var chunks = Math.Min(items, CpuParallelism.Degree * 4);
        CpuParallelism.Pool.For(chunks, chunk =>
        {
            var scores = new float[positions];
            for (var i = chunk; i < items; i += chunks)
            {
                Head(i, scores);
            }
        });
    }
}
