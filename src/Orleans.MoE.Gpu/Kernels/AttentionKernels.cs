using ILGPU;
using ILGPU.Algorithms;

namespace Orleans.MoE.Gpu.Kernels;

/// <summary>
/// Causal attention of T new tokens (positions Start..Start+T−1) over a cache. Queries [T, Heads, KeyDim];
/// the key of position j for kv head g at K[j·KRowStride + g·KHeadStride], its value at
/// V[j·VRowStride + g·VHeadStride], ValueDim wide; head h reads kv head h / HeadsPerKv. Output
/// [T, Heads, ValueDim]. Scores is scratch of ScoreStride floats per (token, head). Window &gt; 0 keeps
/// keys at j &gt; position − Window. Grouped-query attention and DeepSeek's latent attention (one
/// shared "kv head": the latent and rope key as key, the latent as value) are both this.
/// </summary>
internal struct AttentionArgs
{
    public ArrayView<float> Q;
    public ArrayView<float> K;
    public ArrayView<float> V;
    public ArrayView<float> Output;
    public ArrayView<float> Scores;
    public int Heads;
    public int HeadsPerKv;
    public int KeyDim;
    public int ValueDim;
    public int KRowStride;
    public int KHeadStride;
    public int VRowStride;
    public int VHeadStride;
    public int Start;
    public int Window;
    public int ScoreStride;
    public float Scale;
}

/// <summary>Attention over the KV cache, and the latent-attention (MLA) projections around it.</summary>
internal static class AttentionKernels
{
    /// <summary>One group per (token, head): scores, softmax, weighted sum of values.</summary>
    public static void Attention(AttentionArgs a)
    {
        var item = Grid.IdxX;
        var t = item / a.Heads;
        var h = item - (t * a.Heads);
        var g = h / a.HeadsPerKv;
        var position = a.Start + t;
        var first = a.Window > 0 && position - a.Window + 1 > 0 ? position - a.Window + 1 : 0;
        var q = (long)item * a.KeyDim;
        var scores = (long)item * a.ScoreStride;

        var localMax = float.NegativeInfinity;
        for (var j = first + Group.IdxX; j <= position; j += Group.DimX)
        {
            var key = ((long)j * a.KRowStride) + ((long)g * a.KHeadStride);
            var dot = 0f;
            for (var d = 0; d < a.KeyDim; d++)
            {
                dot += a.Q[q + d] * a.K[key + d];
            }

            dot *= a.Scale;
            a.Scores[scores + j - first] = dot;
            localMax = dot > localMax ? dot : localMax;
        }

        var max = Reductions.GroupMax(localMax);
        var localSum = 0f;
        for (var j = first + Group.IdxX; j <= position; j += Group.DimX)
        {
            var e = XMath.Exp(a.Scores[scores + j - first] - max);
            a.Scores[scores + j - first] = e;
            localSum += e;
        }

        var sum = Reductions.GroupSum(localSum);
        var output = (long)item * a.ValueDim;
        for (var d = Group.IdxX; d < a.ValueDim; d += Group.DimX)
        {
            var acc = 0f;
            for (var j = first; j <= position; j++)
            {
                acc += a.Scores[scores + j - first] * a.V[((long)j * a.VRowStride) + ((long)g * a.VHeadStride) + d];
            }

            a.Output[output + d] = acc / sum;
        }
    }

    /// <summary>
    /// MLA queries in the latent space, one thread per (token, head, c &lt; rank + ropeDim):
    /// c &lt; rank: Σᵢ W_K[h][i, c] · q_nope[t, h, i] (W_K: rows h·(nope + v) + i of kv_b_proj, i &lt; nope),
    /// the nope query carried through the key projection; else the (rotated) rope query dim c − rank.
    /// Output [T, heads, rank + ropeDim]: the query that attends over [latent | rope key] cache rows.
    /// </summary>
    public static void MlaQuery<TW>(Index1D at, ArrayView<float> queries, TW kvB, ArrayView<float> absorbed, int heads, int rank, int ropeDim, int nopeDim, int valueDim)
        where TW : struct, IWeights
    {
        int index = at;
        var width = rank + ropeDim;
        var item = index / width;
        var c = index - (item * width);
        var h = item % heads;
        var keyDim = nopeDim + ropeDim;
        var q = (long)item * keyDim;
        if (c >= rank)
        {
            absorbed[index] = queries[q + nopeDim + c - rank];
            return;
        }

        var rows = (long)h * (nopeDim + valueDim);
        var sum = 0f;
        for (var i = 0; i < nopeDim; i++)
        {
            sum += kvB.Get(((rows + i) * rank) + c) * queries[q + i];
        }

        absorbed[index] = sum;
    }

    /// <summary>
    /// MLA values out of the weighted latents, one thread per (token, head, d &lt; valueDim):
    /// Σ_c W_V[h][d, c] · context[t, h, c] (W_V: rows h·(nope + v) + nope + d of kv_b_proj).
    /// </summary>
    public static void MlaValue<TW>(Index1D at, ArrayView<float> context, TW kvB, ArrayView<float> output, int heads, int rank, int nopeDim, int valueDim)
        where TW : struct, IWeights
    {
        int index = at;
        var item = index / valueDim;
        var d = index - (item * valueDim);
        var h = item % heads;
        var row = (((long)h * (nopeDim + valueDim)) + nopeDim + d) * rank;
        var c0 = (long)item * rank;
        var sum = 0f;
        for (var c = 0; c < rank; c++)
        {
            sum += kvB.Get(row + c) * context[c0 + c];
        }

        output[index] = sum;
    }
}
