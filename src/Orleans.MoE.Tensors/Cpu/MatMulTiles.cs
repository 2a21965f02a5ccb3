using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Orleans.MoE.Tensors.Cpu;

/// <summary>
/// The product for several tokens (a prompt, or the tokens routed to one expert) in register tiles of
/// 12 weight rows × 8 tokens: the activations are transposed once per product into a panel (8 tokens
/// per k, one vector), and a tile's rows are converted to f32 once into per-thread scratch laid out in
/// chunks of 256 k (row r of a chunk at a fixed offset, so one pointer addresses all twelve). Each row
/// broadcasts w[r, k] into its own accumulator of 8 tokens: twelve independent chains cover the FMA
/// latency, with no horizontal sums. Rows are outside, token blocks inside, so each weight is read from
/// memory once per product; every output is one chain of fused multiply-adds in k order.
/// </summary>
public static unsafe partial class MatMul
{
    /// <summary>Tokens per panel block (one vector).</summary>
    private const int Tile = 8;

    /// <summary>Weight rows per tile (one accumulator each).</summary>
    private const int TileRowCount = 12;

    /// <summary>k per scratch chunk: row r of chunk c starts at (c · TileRowCount + r) · KChunk.</summary>
    private const int KChunk = 256;

    [ThreadStatic]
    private static float[]? t_tileScratch;

    /// <summary>Whether the tiled kernels handle the product.</summary>
    private static bool Tiled(int tokens) => tokens >= FusedTokenLimit && Vector256.IsHardwareAccelerated;

    /// <summary>y = x · Wᵀ by tiles, rows spread over the cores in whole tiles when the product is large.</summary>
    private static void MultiplyTiled(float* x, int tokens, in WeightMatrix w, float* y, int threads)
    {
        var k = w.Cols;
        var n = w.Rows;
        var blocks = (tokens + Tile - 1) / Tile;
        var panelArray = ArrayPool<float>.Shared.Rent(blocks * Tile * k);
        try
        {
            fixed (float* panel = panelArray)
            {
                Pack(x, tokens, k, panel);
                var tiles = (n + TileRowCount - 1) / TileRowCount;
                if ((long)tokens * n * k < MinParallelWork || threads == 1 || tiles < 2)
                {
                    TileRows(panel, tokens, w, y, 0, n);
                    return;
                }

                var chunks = Math.Min(tiles, threads * 4);
                var tilesPerChunk = (tiles + chunks - 1) / chunks;
                chunks = (tiles + tilesPerChunk - 1) / tilesPerChunk;
                var (p, ya, weights) = ((nint)panel, (nint)y, w);
                CpuParallelism.Pool.For(chunks, chunk =>
                {
                    var start = chunk * tilesPerChunk * TileRowCount;
                    TileRows((float*)p, tokens, weights, (float*)ya, start, Math.Min(n, start + (tilesPerChunk * TileRowCount)));
                });
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(panelArray);
        }
    }

    /// <summary>panel[b][k][t] = x[8b + t, k], zero past the last token.</summary>
    private static void Pack(float* x, int tokens, int k, float* panel)
    {
        for (var t0 = 0; t0 < tokens; t0 += Tile)
        {
            var block = panel + ((long)t0 * k);
            for (var t = 0; t < Tile; t++)
            {
                if (t0 + t < tokens)
                {
                    var xt = x + ((long)(t0 + t) * k);
                    for (var i = 0; i < k; i++)
                    {
                        block[(i * Tile) + t] = xt[i];
                    }
                }
                else
                {
                    for (var i = 0; i < k; i++)
                    {
                        block[(i * Tile) + t] = 0;
                    }
                }
            }
        }
    }

    /// <summary>Output rows [rowStart, rowEnd) for every token, a tile of rows at a time.</summary>
    private static void TileRows(float* panel, int tokens, in WeightMatrix w, float* y, int rowStart, int rowEnd)
    {
        var k = w.Cols;
        var n = w.Rows;
        var chunks = (k + KChunk - 1) / KChunk;
        var results = stackalloc float[TileRowCount * Tile];
        var scratchArray = t_tileScratch;
        if (scratchArray is null || scratchArray.Length < chunks * TileRowCount * KChunk)
        {
            scratchArray = t_tileScratch = GC.AllocateUninitializedArray<float>(chunks * TileRowCount * KChunk, pinned: true);
        }

        var scratch = (float*)Unsafe.AsPointer(ref scratchArray[0]);
        for (var r0 = rowStart; r0 < rowEnd; r0 += TileRowCount)
        {
            var rows = Math.Min(TileRowCount, rowEnd - r0);
            for (var r = 0; r < rows; r++)
            {
                var row = w.RowPointer(r0 + r);
                for (var c = 0; c < chunks; c++)
                {
                    var length = Math.Min(KChunk, k - (c * KChunk));
                    DTypeConvert.ToSingle(row + (c * KChunk * w.DType.Size()), w.DType, new Span<float>(scratch + ((((long)c * TileRowCount) + r) * KChunk), length));
                }
            }

            PrefetchRows(w, r0 + TileRowCount, Math.Min(rowEnd, r0 + (2 * TileRowCount)));

            for (var t0 = 0; t0 < tokens; t0 += Tile)
            {
                var block = panel + ((long)t0 * k);
                if (rows == TileRowCount)
                {
                    TileBlock(block, scratch, k, results);
                }
                else
                {
                    for (var r = 0; r < rows; r++)
                    {
                        ScratchRow(block, scratch + (r * KChunk), k).Store(results + (r * Tile));
                    }
                }

                var count = Math.Min(Tile, tokens - t0);
                for (var t = 0; t < count; t++)
                {
                    var yt = y + ((long)(t0 + t) * n) + r0;
                    for (var r = 0; r < rows; r++)
                    {
                        yt[r] = results[(r * Tile) + t];
                    }
                }
            }
        }

        GC.KeepAlive(scratchArray);
    }

    /// <summary>Asks for rows [start, end) into L2 while the current tile computes: the next tile's conversion then reads from cache, not memory.</summary>
    private static void PrefetchRows(in WeightMatrix w, int start, int end)
    {
        if (!Sse.IsSupported || start >= end)
        {
            return;
        }

        var first = (byte*)w.RowPointer(start);
        var bytes = (long)(end - start) * w.Cols * w.DType.Size();
        for (long offset = 0; offset < bytes; offset += 64)
        {
            Sse.Prefetch1(first + offset);
        }
    }

    /// <summary>results[r][t] = Σₖ w[r, k] · panel[k][t] for the 12 rows in scratch.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileBlock(float* panel, float* scratch, int k, float* results)
    {
        var a0 = Vector256<float>.Zero;
        var a1 = Vector256<float>.Zero;
        var a2 = Vector256<float>.Zero;
        var a3 = Vector256<float>.Zero;
        var a4 = Vector256<float>.Zero;
        var a5 = Vector256<float>.Zero;
        var a6 = Vector256<float>.Zero;
        var a7 = Vector256<float>.Zero;
        var a8 = Vector256<float>.Zero;
        var a9 = Vector256<float>.Zero;
        var a10 = Vector256<float>.Zero;
        var a11 = Vector256<float>.Zero;
        var x = panel;
        for (var c = 0; c < k; c += KChunk)
        {
            var length = Math.Min(KChunk, k - c);
            for (float* w = scratch + ((long)c * TileRowCount), end = w + length; w < end; w++, x += Tile)
            {
                var xv = Vector256.Load(x);
                a0 = Vector256.FusedMultiplyAdd(Vector256.Create(w[0]), xv, a0);
                a1 = Vector256.FusedMultiplyAdd(Vector256.Create(w[KChunk]), xv, a1);
                a2 = Vector256.FusedMultiplyAdd(Vector256.Create(w[2 * KChunk]), xv, a2);
                a3 = Vector256.FusedMultiplyAdd(Vector256.Create(w[3 * KChunk]), xv, a3);
                a4 = Vector256.FusedMultiplyAdd(Vector256.Create(w[4 * KChunk]), xv, a4);
                a5 = Vector256.FusedMultiplyAdd(Vector256.Create(w[5 * KChunk]), xv, a5);
                a6 = Vector256.FusedMultiplyAdd(Vector256.Create(w[6 * KChunk]), xv, a6);
                a7 = Vector256.FusedMultiplyAdd(Vector256.Create(w[7 * KChunk]), xv, a7);
                a8 = Vector256.FusedMultiplyAdd(Vector256.Create(w[8 * KChunk]), xv, a8);
                a9 = Vector256.FusedMultiplyAdd(Vector256.Create(w[9 * KChunk]), xv, a9);
                a10 = Vector256.FusedMultiplyAdd(Vector256.Create(w[10 * KChunk]), xv, a10);
                a11 = Vector256.FusedMultiplyAdd(Vector256.Create(w[11 * KChunk]), xv, a11);
            }
        }

        a0.Store(results);
        a1.Store(results + Tile);
        a2.Store(results + (2 * Tile));
        a3.Store(results + (3 * Tile));
        a4.Store(results + (4 * Tile));
        a5.Store(results + (5 * Tile));
        a6.Store(results + (6 * Tile));
        a7.Store(results + (7 * Tile));
        a8.Store(results + (8 * Tile));
        a9.Store(results + (9 * Tile));
        a10.Store(results + (10 * Tile));
        a11.Store(results + (11 * Tile));
    }

    /// <summary>One row of scratch (at <paramref name="row"/>, chunks TileRowCount · KChunk apart) against a panel block: the rows past the last whole tile.</summary>
    private static Vector256<float> ScratchRow(float* panel, float* row, int k)
    {
        var a = Vector256<float>.Zero;
        for (var i = 0; i < k; i++)
        {
            a = Vector256.FusedMultiplyAdd(Vector256.Create(row[((i / KChunk) * TileRowCount * KChunk) + (i % KChunk)]), Vector256.Load(panel + ((long)i * Tile)), a);
        }

        return a;
    }
}
