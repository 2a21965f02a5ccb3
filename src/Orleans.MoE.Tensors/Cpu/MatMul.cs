using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Orleans.MoE.Tensors.Cpu;

/// <summary>
/// y[t, n] = Σₖ x[t, k] · W[n, k]: f32 activations times weights in their stored dtype (f32, bf16, f16),
/// vectorised and spread over cores by blocks of output rows.
/// Products of fewer than four tokens (a decode step) read bf16 rows directly, widening in registers
/// (other dtypes convert a block of rows to f32 first); products of more tokens run in register tiles
/// (see MatMulTiles.cs).
/// </summary>
public static unsafe partial class MatMul
{
    /// <summary>Output rows converted to f32 together (per thread scratch: RowBlock × K floats).</summary>
    private const int RowBlock = 16;

    /// <summary>Tokens that share one converted row block; keeps their activations in L2.</summary>
    private const int TokenBlock = 32;

    /// <summary>
    /// Below this many multiply-adds (about 30 µs on one core) a product runs on the calling thread:
    /// handing work to another core costs microseconds, and on SMT siblings a busy helper slows the caller.
    /// </summary>
    private const long MinParallelWork = 1 << 20;

    /// <summary>Below this many tokens bf16 rows are widened in registers instead of converted to scratch.</summary>
    private const int FusedTokenLimit = 4;

    [ThreadStatic]
    private static float[]? t_scratch;

    /// <summary>Computes y = x · Wᵀ for <paramref name="tokens"/> rows of x.</summary>
    public static void Multiply(ReadOnlySpan<float> x, int tokens, in WeightMatrix w, Span<float> y) =>
        MultiplyEach(x, tokens, new ReadOnlySpan<WeightMatrix>(in w), y);

    /// <summary>
    /// The products of the same x with several matrices of its width, y = [x · W₀ᵀ, x · W₁ᵀ, ...] one after
    /// another ([tokens, rows of W₀], then [tokens, rows of W₁], ...). For a few tokens their rows are one
    /// parallel loop: a decode step's q, k and v projections, each too small to spread over the cores on
    /// its own, share them.
    /// </summary>
    public static void MultiplyEach(ReadOnlySpan<float> x, int tokens, ReadOnlySpan<WeightMatrix> weights, Span<float> y)
    {
        if (weights.IsEmpty)
        {
            throw new ArgumentException("no matrices to multiply by", nameof(weights));
        }

        var k = weights[0].Cols;
        long rows = 0;
        var bf16 = false;
        foreach (var w in weights)
        {
            if (w.Cols != k)
            {
                throw new ArgumentException($"the matrices must have x's width {k}, not {w.Cols}", nameof(weights));
            }

            rows += w.Rows;
            bf16 |= w.DType == DType.BF16;
        }

        if (x.Length < (long)tokens * k)
        {
            ThrowLength(nameof(x), (long)tokens * k, x.Length);
        }

        if (y.Length < tokens * rows)
        {
            ThrowLength(nameof(y), tokens * rows, y.Length);
        }

        if (tokens == 0)
        {
            return;
        }

        fixed (float* xp = x)
        fixed (float* yp = y)
        {
            var threads = CpuParallelism.Degree;
            if (Tiled(tokens))
            {
                var output = yp;
                foreach (var w in weights)
                {
                    MultiplyTiled(xp, tokens, w, output, threads);
                    output += (long)tokens * w.Rows;
                }

                return;
            }

            var pairsArray = bf16 ? ArrayPool<float>.Shared.Rent(tokens * k) : null;
            try
            {
                fixed (float* pairs = pairsArray)
                {
                    if (pairs is not null)
                    {
                        Deinterleave(xp, tokens, k, pairs);
                    }

                    if (tokens * rows * k < MinParallelWork || threads == 1 || rows < 2 * RowBlock)
                    {
                        var output = yp;
                        foreach (var w in weights)
                        {
                            Rows(xp, pairs, tokens, w, output, 0, w.Rows);
                            output += (long)tokens * w.Rows;
                        }

                        return;
                    }

                    RowsInParallel(xp, pairs, tokens, weights, yp, threads);
                }
            }
            finally
            {
                if (pairsArray is not null)
                {
                    ArrayPool<float>.Shared.Return(pairsArray);
                }
            }
        }
    }

    /// <summary>
    /// The matrices' rows in blocks of <see cref="RowBlock"/>, numbered across all of them, in chunks of
    /// whole blocks, a few per thread so uneven cores still balance.
    /// </summary>
    private static void RowsInParallel(float* x, float* pairs, int tokens, ReadOnlySpan<WeightMatrix> weights, float* y, int threads)
    {
        var matrices = weights.ToArray();
        var firstBlock = new int[matrices.Length + 1];
        var outputs = new nint[matrices.Length];
        var output = (nint)y;
        for (var i = 0; i < matrices.Length; i++)
        {
            firstBlock[i + 1] = firstBlock[i] + ((matrices[i].Rows + RowBlock - 1) / RowBlock);
            outputs[i] = output;
            output += (nint)((long)tokens * matrices[i].Rows * sizeof(float));
        }

        var blocks = firstBlock[^1];
        var chunks = Math.Min(blocks, threads * 4);
        var blocksPerChunk = (blocks + chunks - 1) / chunks;
        chunks = (blocks + blocksPerChunk - 1) / blocksPerChunk;
        var (xa, pa) = ((nint)x, (nint)pairs);
        CpuParallelism.Pool.For(chunks, chunk =>
        {
            var block = chunk * blocksPerChunk;
            var end = Math.Min(blocks, block + blocksPerChunk);
            var i = 0;
            while (block < end)
            {
                while (block >= firstBlock[i + 1])
                {
                    i++;
                }

                var last = Math.Min(end, firstBlock[i + 1]);
                var w = matrices[i];
                Rows((float*)xa, (float*)pa, tokens, w, (float*)outputs[i], (block - firstBlock[i]) * RowBlock, Math.Min(w.Rows, (last - firstBlock[i]) * RowBlock));
                block = last;
            }
        });
    }

    /// <summary>
    /// For bf16 rows read as 32-bit pairs: in every block of 16, x's even elements then its odd ones,
    /// so a shift and a mask of 8 loaded pairs line up with two vectors of x (the tail past the last
    /// whole block is left out; it is read from x).
    /// </summary>
    private static void Deinterleave(float* x, int tokens, int k, float* pairs)
    {
        for (var t = 0; t < tokens; t++)
        {
            var source = x + ((long)t * k);
            var target = pairs + ((long)t * k);
            for (var j = 0; j + 16 <= k; j += 16)
            {
                for (var m = 0; m < 8; m++)
                {
                    target[j + m] = source[j + (2 * m)];
                    target[j + 8 + m] = source[j + (2 * m) + 1];
                }
            }
        }
    }

    /// <summary>Output rows [rowStart, rowEnd) for all tokens.</summary>
    private static void Rows(float* x, float* pairs, int tokens, in WeightMatrix w, float* y, int rowStart, int rowEnd)
    {
        var k = w.Cols;
        var n = w.Rows;
        if (w.DType == DType.BF16 && tokens < FusedTokenLimit)
        {
            for (var t = 0; t < tokens; t++)
            {
                var xt = x + ((long)t * k);
                var pt = pairs + ((long)t * k);
                var yt = y + ((long)t * n);
                var r = rowStart;
                for (; r + 4 <= rowEnd; r += 4)
                {
                    DotBFloat16x4(xt, pt, (ushort*)w.RowPointer(r), k, yt + r);
                }

                for (; r < rowEnd; r++)
                {
                    yt[r] = DotBFloat16(xt, pt, (ushort*)w.RowPointer(r), k);
                }
            }

            return;
        }

        float* scratch = null;
        float[]? scratchArray = null;
        if (w.DType != DType.F32)
        {
            scratchArray = t_scratch;
            if (scratchArray is null || scratchArray.Length < RowBlock * k)
            {
                scratchArray = t_scratch = GC.AllocateUninitializedArray<float>(RowBlock * k, pinned: true);
            }

            scratch = (float*)Unsafe.AsPointer(ref scratchArray[0]);
        }

        for (var t0 = 0; t0 < tokens; t0 += TokenBlock)
        {
            var t1 = Math.Min(tokens, t0 + TokenBlock);
            for (var r0 = rowStart; r0 < rowEnd; r0 += RowBlock)
            {
                var count = Math.Min(RowBlock, rowEnd - r0);
                float* rows;
                if (scratch is null)
                {
                    rows = (float*)w.RowPointer(r0);
                }
                else
                {
                    DTypeConvert.ToSingle(w.RowPointer(r0), w.DType, new Span<float>(scratch, count * k));
                    rows = scratch;
                }

                for (var t = t0; t < t1; t++)
                {
                    var xt = x + ((long)t * k);
                    var yt = y + ((long)t * n) + r0;
                    var r = 0;
                    for (; r + 4 <= count; r += 4)
                    {
                        Dot4(xt, rows + ((long)r * k), k, yt + r);
                    }

                    for (; r < count; r++)
                    {
                        yt[r] = TensorPrimitives.Dot(new ReadOnlySpan<float>(xt, k), new ReadOnlySpan<float>(rows + ((long)r * k), k));
                    }
                }
            }
        }

        GC.KeepAlive(scratchArray);
    }

    /// <summary>Four dot products of x with four consecutive f32 rows, sharing the loads of x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Dot4(float* x, float* w, int k, float* result)
    {
        var w1 = w + k;
        var w2 = w1 + k;
        var w3 = w2 + k;
        var i = 0;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        if (Vector256.IsHardwareAccelerated && k >= 8)
        {
            var a0 = Vector256<float>.Zero;
            var a1 = Vector256<float>.Zero;
            var a2 = Vector256<float>.Zero;
            var a3 = Vector256<float>.Zero;
            for (; i <= k - 8; i += 8)
            {
                var xv = Vector256.Load(x + i);
                a0 = Vector256.FusedMultiplyAdd(xv, Vector256.Load(w + i), a0);
                a1 = Vector256.FusedMultiplyAdd(xv, Vector256.Load(w1 + i), a1);
                a2 = Vector256.FusedMultiplyAdd(xv, Vector256.Load(w2 + i), a2);
                a3 = Vector256.FusedMultiplyAdd(xv, Vector256.Load(w3 + i), a3);
            }

            s0 = Vector256.Sum(a0);
            s1 = Vector256.Sum(a1);
            s2 = Vector256.Sum(a2);
            s3 = Vector256.Sum(a3);
        }

        for (; i < k; i++)
        {
            var xi = x[i];
            s0 += xi * w[i];
            s1 += xi * w1[i];
            s2 += xi * w2[i];
            s3 += xi * w3[i];
        }

        result[0] = s0;
        result[1] = s1;
        result[2] = s2;
        result[3] = s3;
    }

    /// <summary>Dot product of f32 x with a bf16 row, 16 weights per step as 8 pairs (see <see cref="Deinterleave"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float DotBFloat16(float* x, float* pairs, ushort* w, int k)
    {
        var i = 0;
        var sum = 0f;
        if (Vector256.IsHardwareAccelerated && k >= 16)
        {
            var even = Vector256<float>.Zero;
            var odd = Vector256<float>.Zero;
            for (; i <= k - 16; i += 16)
            {
                (even, odd) = MultiplyAddPairs(Vector256.Load((uint*)(w + i)), pairs + i, even, odd);
            }

            sum = Vector256.Sum(even + odd);
        }

        for (; i < k; i++)
        {
            sum += x[i] * DTypeConvert.BFloat16ToSingle(w[i]);
        }

        return sum;
    }

    /// <summary>
    /// Four dot products of f32 x with four consecutive bf16 rows: x is loaded once, the reductions
    /// amortised. The four rows are one block of memory read as four short streams, too short for the
    /// hardware prefetcher to run ahead, so each step asks for the next block's lines at the rate this
    /// one is consumed (two lines per step, one block ahead).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void DotBFloat16x4(float* x, float* pairs, ushort* w, int k, float* result)
    {
        var i = 0;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        if (Vector256.IsHardwareAccelerated && k >= 16)
        {
            var (e0, o0, e1, o1, e2, o2, e3, o3) = (Vector256<float>.Zero, Vector256<float>.Zero, Vector256<float>.Zero, Vector256<float>.Zero,
                Vector256<float>.Zero, Vector256<float>.Zero, Vector256<float>.Zero, Vector256<float>.Zero);
            var next = (byte*)(w + (4 * k));
            for (; i <= k - 16; i += 16)
            {
                if (Sse.IsSupported)
                {
                    Sse.Prefetch0(next + (8 * i));
                    Sse.Prefetch0(next + (8 * i) + 64);
                }

                (e0, o0) = MultiplyAddPairs(Vector256.Load((uint*)(w + i)), pairs + i, e0, o0);
                (e1, o1) = MultiplyAddPairs(Vector256.Load((uint*)(w + k + i)), pairs + i, e1, o1);
                (e2, o2) = MultiplyAddPairs(Vector256.Load((uint*)(w + (2 * k) + i)), pairs + i, e2, o2);
                (e3, o3) = MultiplyAddPairs(Vector256.Load((uint*)(w + (3 * k) + i)), pairs + i, e3, o3);
            }

            s0 = Vector256.Sum(e0 + o0);
            s1 = Vector256.Sum(e1 + o1);
            s2 = Vector256.Sum(e2 + o2);
            s3 = Vector256.Sum(e3 + o3);
        }

        for (; i < k; i++)
        {
            var xi = x[i];
            s0 += xi * DTypeConvert.BFloat16ToSingle(w[i]);
            s1 += xi * DTypeConvert.BFloat16ToSingle(w[k + i]);
            s2 += xi * DTypeConvert.BFloat16ToSingle(w[(2 * k) + i]);
            s3 += xi * DTypeConvert.BFloat16ToSingle(w[(3 * k) + i]);
        }

        result[0] = s0;
        result[1] = s1;
        result[2] = s2;
        result[3] = s3;
    }

    /// <summary>
    /// 8 bf16 pairs times x's block of 16 in <paramref name="pairs"/> (even elements, then odd): the low
    /// halves shifted up are the even weights, the masked high halves the odd ones.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float> Even, Vector256<float> Odd) MultiplyAddPairs(Vector256<uint> packed, float* pairs, Vector256<float> even, Vector256<float> odd) =>
        (Vector256.FusedMultiplyAdd(Vector256.ShiftLeft(packed, 16).AsSingle(), Vector256.Load(pairs), even),
         Vector256.FusedMultiplyAdd((packed & Vector256.Create(0xFFFF0000u)).AsSingle(), Vector256.Load(pairs + 8), odd));

    private static void ThrowLength(string name, long expected, int actual) =>
        throw new ArgumentException($"{name} holds {actual} elements; the product needs {expected}", name);
}
