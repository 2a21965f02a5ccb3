using ILGPU;

namespace Orleans.MoE.Gpu.Kernels;

/// <summary>
/// Arguments of a batch of dot products of activation rows with weight rows: output o is row
/// r = o / OutPerRow, column c = o % OutPerRow; it reads x row r / XDivisor and weight row
/// (Experts[r] · RowsPerExpert when there are experts) + c, both K wide, and writes
/// y[o] = x·w + bias[c] (+ y[o] when Accumulate). A linear layer is R = tokens, OutPerRow = N;
/// an expert projection indexed by routed (token, slot) pairs reads its expert's block of rows.
/// </summary>
internal struct DotArgs
{
    public ArrayView<float> X;
    public ArrayView<int> Experts;
    public ArrayView<float> Bias;
    public ArrayView<float> Y;
    public int K;
    public int OutPerRow;
    public int XDivisor;
    public int RowsPerExpert;
    public int Accumulate;
    public int Outputs;

    public readonly void Map(int output, out long x, out long w, out int column)
    {
        var row = output / OutPerRow;
        column = output - (row * OutPerRow);
        x = (long)(row / XDivisor) * K;
        var weightRow = Experts.Length > 0 ? ((long)Experts[row] * RowsPerExpert) + column : column;
        w = weightRow * K;
    }

    public readonly void Store(int output, int column, float dot)
    {
        var value = dot;
        if (Bias.Length > 0)
        {
            value += Bias[column];
        }

        if (Accumulate != 0)
        {
            value += Y[output];
        }

        Y[output] = value;
    }
}

/// <summary>Products of activations with weights: GEMV (one thread or one warp per output) and a tiled GEMM.</summary>
internal static class LinearKernels
{
    /// <summary>One thread per output, a plain loop over K: cheapest where threads are simulated (the CPU accelerator).</summary>
    public static void DotThread<TW>(Index1D at, DotArgs a, TW w)
        where TW : struct, IWeights
    {
        int index = at;
        var output = index;
        a.Map(output, out var x, out var row, out var column);
        var sum = 0f;
        for (var k = 0; k < a.K; k++)
        {
            sum += a.X[x + k] * w.Get(row + k);
        }

        a.Store(output, column, sum);
    }

    /// <summary>
    /// One warp per output (bandwidth-bound GEMV for few tokens): lanes stride over K four weights at a
    /// time (one 8-byte load of bf16), then a butterfly sum. Launch with groups of whole warps.
    /// </summary>
    public static void DotWarp<TW>(DotArgs a, TW w)
        where TW : struct, IWeights
    {
        var warps = Group.DimX / Warp.WarpSize;
        var output = (Grid.IdxX * warps) + Warp.WarpIdx;
        if (output >= a.Outputs)
        {
            return;
        }

        a.Map(output, out var x, out var row, out var column);
        var sum = 0f;
        if ((a.K & 3) == 0)
        {
            for (var k = Warp.LaneIdx * 4; k < a.K; k += Warp.WarpSize * 4)
            {
                w.Get4(row + k, out var w0, out var w1, out var w2, out var w3);
                sum += (a.X[x + k] * w0) + (a.X[x + k + 1] * w1) + (a.X[x + k + 2] * w2) + (a.X[x + k + 3] * w3);
            }
        }
        else
        {
            for (var k = Warp.LaneIdx; k < a.K; k += Warp.WarpSize)
            {
                sum += a.X[x + k] * w.Get(row + k);
            }
        }

        sum = Reductions.WarpSum(sum);
        if (Warp.LaneIdx == 0)
        {
            a.Store(output, column, sum);
        }
    }

    /// <summary>
    /// y[R, N] = x[R, K] · W[N, K]ᵀ (+ bias, + y) by square tiles of <paramref name="tile"/>² threads through
    /// shared memory (2·tile² floats): the fallback for many tokens when cuBLAS is absent. Grid (N tiles, R tiles).
    /// </summary>
    public static void Tiled<TW>(DotArgs a, TW w, int rows, int tile)
        where TW : struct, IWeights
    {
        var shared = SharedMemory.GetDynamic<float>();
        var tx = Group.IdxX % tile;
        var ty = Group.IdxX / tile;
        var n0 = Grid.IdxX * tile;
        var r0 = Grid.IdxY * tile;
        var n = a.OutPerRow;
        var sum = 0f;
        for (var k0 = 0; k0 < a.K; k0 += tile)
        {
            var r = r0 + ty;
            var k = k0 + tx;
            shared[(ty * tile) + tx] = r < rows && k < a.K ? a.X[((long)r * a.K) + k] : 0f;
            var wr = n0 + ty;
            shared[(tile * tile) + (ty * tile) + tx] = wr < n && k < a.K ? w.Get(((long)wr * a.K) + k) : 0f;
            Group.Barrier();
            for (var kk = 0; kk < tile; kk++)
            {
                sum += shared[(ty * tile) + kk] * shared[(tile * tile) + (tx * tile) + kk];
            }

            Group.Barrier();
        }

        var row = r0 + ty;
        var column = n0 + tx;
        if (row < rows && column < n)
        {
            a.Store((row * n) + column, column, sum);
        }
    }

    /// <summary>
    /// Splits f32 activations into bf16 rows: hi = bf16(x), and with two halves also lo = bf16(x − hi) at
    /// [count, 2·count), so that a bf16 GEMM over [hi; lo] (2R rows), its halves added, gives W·x to about
    /// 2⁻¹⁶ relative (the weights are exactly bf16). One half is x rounded to bf16 (<see cref="Device.GpuPrecision.Bf16Activations"/>).
    /// </summary>
    public static void SplitBf16(Index1D at, ArrayView<float> x, ArrayView<ushort> split, int count, int halves)
    {
        int index = at;
        var value = x[index];
        var hi = ToBf16(value);
        split[index] = hi;
        if (halves == 2)
        {
            split[index + count] = ToBf16(value - Interop.IntAsFloat((uint)hi << 16));
        }
    }

    /// <summary>
    /// <see cref="SplitBf16"/> of rows grouped by expert, both halves, each expert's side by side: row r of
    /// expert e = experts[pairOfRow[r]] (first row o = starts[e], n = counts[e] rows) goes to split rows
    /// r + o (hi) and r + o + n (lo), so the expert's [hi; lo] are rows [2o, 2o + 2n): one GEMM per expert
    /// reads its weights once for both halves.
    /// </summary>
    public static void SplitBf16ByExpert(Index1D at, ArrayView<float> x, ArrayView<ushort> split, ArrayView<int> experts, ArrayView<int> pairOfRow, ArrayView<int> starts, ArrayView<int> counts, int k)
    {
        int index = at;
        var (hiAt, loAt) = HalvesOf(index, k, experts, pairOfRow, starts, counts);
        var value = x[index];
        var hi = ToBf16(value);
        split[hiAt] = hi;
        split[loAt] = ToBf16(value - Interop.IntAsFloat((uint)hi << 16));
    }

    /// <summary>y[r, :] = parts[r + o, :] + parts[r + o + n, :]: the two halves of <see cref="SplitBf16ByExpert"/>'s GEMMs added, row r of expert e with o = starts[e], n = counts[e].</summary>
    public static void FinishByExpert(Index1D at, ArrayView<float> parts, ArrayView<float> y, ArrayView<int> experts, ArrayView<int> pairOfRow, ArrayView<int> starts, ArrayView<int> counts, int width)
    {
        int index = at;
        var (hiAt, loAt) = HalvesOf(index, width, experts, pairOfRow, starts, counts);
        y[index] = parts[hiAt] + parts[loAt];
    }

    /// <summary>
    /// Where element <paramref name="index"/> of rows grouped by expert (row r, <paramref name="width"/> wide)
    /// lies in the expert's hi and lo rows of <see cref="SplitBf16ByExpert"/>'s layout: rows r + o and r + o + n.
    /// </summary>
    private static (long Hi, long Lo) HalvesOf(int index, int width, ArrayView<int> experts, ArrayView<int> pairOfRow, ArrayView<int> starts, ArrayView<int> counts)
    {
        var r = index / width;
        var c = index - (r * width);
        var e = experts[pairOfRow[r]];
        var hiRow = r + starts[e];
        return (((long)hiRow * width) + c, ((long)(hiRow + counts[e]) * width) + c);
    }

    /// <summary>rounded[i] = x[i] rounded to bf16 (to nearest even), as f32: the tiled GEMM's operand under bf16 activations.</summary>
    public static void RoundToBf16(Index1D at, ArrayView<float> x, ArrayView<float> rounded)
    {
        int index = at;
        rounded[index] = Interop.IntAsFloat((uint)ToBf16(x[index]) << 16);
    }

    /// <summary>x to bf16, rounding to nearest even (finite values).</summary>
    public static ushort ToBf16(float value)
    {
        var bits = Interop.FloatAsInt(value);
        var rounding = 0x7FFFu + ((bits >> 16) & 1u);
        return (ushort)((bits + rounding) >> 16);
    }

    /// <summary>
    /// y[r, n] = part[r, n] (+ part[R + r, n] when split) + bias[n] (+ y[r, n]): finishes a cuBLAS product
    /// computed into a scratch [R or 2R, N].
    /// </summary>
    public static void Finish(Index1D at, ArrayView<float> part, ArrayView<float> bias, ArrayView<float> y, int count, int n, int split, int accumulate)
    {
        int index = at;
        var value = part[index];
        if (split != 0)
        {
            value += part[index + count];
        }

        if (bias.Length > 0)
        {
            value += bias[index % n];
        }

        if (accumulate != 0)
        {
            value += y[index];
        }

        y[index] = value;
    }
}
