using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Layers;

/// <summary>
/// Causal softmax(q·kᵀ·scale)·v for new queries at positions [start, start + T) against every cached
/// position up to each query's own, with grouped key/value heads (query head h reads kv head
/// h / (heads / kvHeads)) and an optional sliding window. Computed in f32 as the reference's eager path.
/// </summary>
internal static class ScaledDotProductAttention
{
    /// <summary>Below this many multiply-adds (about 30 µs on one core) the heads run on the calling thread.</summary>
    private const int MinParallelWork = 1 << 18;

    /// <param name="queries">[T, heads, keyDim]</param>
    /// <param name="cache">keys [positions, kvHeads, keyDim] and values [positions, kvHeads, valueDim]</param>
    /// <param name="output">[T, heads, valueDim]</param>
    /// <param name="window">Sliding window: a query at p sees keys at j &gt; p - window; null for all.</param>
    public static void Compute(
        ReadOnlyMemory<float> queries, LayerCache cache, float[] output,
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
            ref var query = ref MemoryMarshal.GetReference(queries.Span.Slice(((t * heads) + h) * keyDim, keyDim));
            var count = position - first + 1;
            var weights = scores.AsSpan(0, count);
            for (var j = first; j <= position; j++)
            {
                weights[j - first] = Dot(ref query, ref keyArray[((j * kvHeads) + kvh) * keyDim], keyDim) * scale;
            }

            Activations.Softmax(weights, weights.Length);
            var result = output.AsSpan(((t * heads) + h) * valueDim, valueDim);
            result.Clear();
            ref var sum = ref MemoryMarshal.GetReference(result);
            for (var j = first; j <= position; j++)
            {
                AddScaled(ref sum, ref valueArray[((j * kvHeads) + kvh) * valueDim], weights[j - first], valueDim);
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

    /// <summary>Σ a[i] · b[i] for i &lt; n, inline: a head is only 64 to 192 wide, and a call per cached position to a general routine cost more than its products.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot(ref float a, ref float b, int n)
    {
        var i = 0;
        var sum = Vector256<float>.Zero;
        for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
        {
            sum = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref a, (nuint)i), Vector256.LoadUnsafe(ref b, (nuint)i), sum);
        }

        var result = Vector256.Sum(sum);
        for (; i < n; i++)
        {
            result += Unsafe.Add(ref a, i) * Unsafe.Add(ref b, i);
        }

        return result;
    }

    /// <summary>y[i] += x[i] · weight for i &lt; n (a product, then a sum, as the reference rounds them).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddScaled(ref float y, ref float x, float weight, int n)
    {
        var i = 0;
        var w = Vector256.Create(weight);
        for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
        {
            ((Vector256.LoadUnsafe(ref x, (nuint)i) * w) + Vector256.LoadUnsafe(ref y, (nuint)i)).StoreUnsafe(ref y, (nuint)i);
        }

        for (; i < n; i++)
        {
            Unsafe.Add(ref y, i) += Unsafe.Add(ref x, i) * weight;
        }
    }
}
