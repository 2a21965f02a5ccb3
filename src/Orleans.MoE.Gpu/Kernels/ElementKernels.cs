using ILGPU;
using ILGPU.Algorithms;

namespace Orleans.MoE.Gpu.Kernels;

/// <summary>RMSNorm over rows of <see cref="Width"/> values, rows <see cref="XStride"/> and <see cref="YStride"/> apart.</summary>
internal struct NormArgs
{
    public ArrayView<float> X;
    public ArrayView<float> Y;
    public ArrayView<float> Weight;
    public int Width;
    public int XStride;
    public int YStride;
    public float Eps;
}

/// <summary>
/// Rotary embedding in place: for token t (position Start + t) and head h, the rotary dims start at
/// t·RowStride + h·HeadStride + Offset; pairs (i, i + Half) or, interleaved, (2i, 2i + 1).
/// </summary>
internal struct RopeArgs
{
    public ArrayView<float> X;
    public ArrayView<float> Cos;
    public ArrayView<float> Sin;
    public int Heads;
    public int Half;
    public int RowStride;
    public int HeadStride;
    public int Offset;
    public int Start;
    public int Interleaved;
}

/// <summary>Element-wise and row-wise kernels: embedding, RMSNorm, RoPE, SwiGLU, residual add, clipping.</summary>
internal static class ElementKernels
{
    /// <summary>hidden[t, :] = E[ids[t], :] widened to f32.</summary>
    public static void Embedding<TW>(Index1D at, ArrayView<int> ids, TW table, ArrayView<float> hidden, int width)
        where TW : struct, IWeights
    {
        int index = at;
        var t = index / width;
        var i = index - (t * width);
        hidden[index] = table.Get(((long)ids[t] * width) + i);
    }

    /// <summary>
    /// One group per row: y = x / sqrt(mean(x²) + eps) · weight, as the reference computes it in f32. y may alias x.
    /// </summary>
    public static void RmsNorm(NormArgs a)
    {
        var row = Grid.IdxX;
        var x = (long)row * a.XStride;
        var y = (long)row * a.YStride;
        var squares = 0f;
        for (var i = Group.IdxX; i < a.Width; i += Group.DimX)
        {
            var v = a.X[x + i];
            squares += v * v;
        }

        var sum = Reductions.GroupSum(squares);
        var scale = 1f / XMath.Sqrt((sum / a.Width) + a.Eps);
        for (var i = Group.IdxX; i < a.Width; i += Group.DimX)
        {
            a.Y[y + i] = a.X[x + i] * scale * a.Weight[i];
        }
    }

    /// <summary>One thread per (token, head, pair): rotate by the table's cos/sin at the token's position.</summary>
    public static void Rope(Index1D at, RopeArgs a)
    {
        int index = at;
        var perToken = a.Heads * a.Half;
        var t = index / perToken;
        var rest = index - (t * perToken);
        var h = rest / a.Half;
        var i = rest - (h * a.Half);
        var start = ((long)t * a.RowStride) + ((long)h * a.HeadStride) + a.Offset;
        var first = a.Interleaved != 0 ? start + (2 * i) : start + i;
        var second = a.Interleaved != 0 ? first + 1 : first + a.Half;
        var table = ((long)(a.Start + t) * a.Half) + i;
        var cos = a.Cos[table];
        var sin = a.Sin[table];
        var x = a.X[first];
        var y = a.X[second];
        a.X[first] = (x * cos) - (y * sin);
        a.X[second] = (y * cos) + (x * sin);
    }

    /// <summary>act[r, i] = silu(gu[r, i]) · gu[r, I + i] for rows of [gate | up] (2I wide); silu(g) = g / (1 + e^−g).</summary>
    public static void SwiGlu(Index1D at, ArrayView<float> gateUp, ArrayView<float> act, int intermediate)
    {
        int index = at;
        var r = index / intermediate;
        var i = index - (r * intermediate);
        var g = gateUp[((long)r * 2 * intermediate) + i];
        var u = gateUp[((long)r * 2 * intermediate) + intermediate + i];
        act[index] = g / (1f + XMath.Exp(-g)) * u;
    }

    /// <summary>y += x.</summary>
    public static void Add(Index1D index, ArrayView<float> x, ArrayView<float> y) => y[index.X] += x[index.X];

    /// <summary>x = clamp(x, −limit, limit) (OLMoE's clip_qkv).</summary>
    public static void Clamp(Index1D at, ArrayView<float> x, float limit)
    {
        int index = at;
        var v = x[index];
        x[index] = v < -limit ? -limit : v > limit ? limit : v;
    }

    /// <summary>Copies count floats from source to target (strided rows of width columns).</summary>
    public static void CopyRows(Index1D at, ArrayView<float> source, int sourceStride, ArrayView<float> target, int targetStride, int width)
    {
        int index = at;
        var r = index / width;
        var c = index - (r * width);
        target[((long)r * targetStride) + c] = source[((long)r * sourceStride) + c];
    }
}
