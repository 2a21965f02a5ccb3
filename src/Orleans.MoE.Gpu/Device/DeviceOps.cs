using ILGPU;
using ILGPU.Runtime;
using Orleans.MoE.Gpu.Blas;
using Orleans.MoE.Gpu.Kernels;

namespace Orleans.MoE.Gpu.Device;

/// <summary>
/// The launches a model makes, one method per operation: sizes checked, the kernel variant chosen
/// (thread, warp, tiled or cuBLAS for products), launch shapes computed. All on the device's stream.
/// </summary>
internal sealed class DeviceOps
{
    private readonly GpuDevice _device;
    private readonly DeviceBuffer<float> _empty;

    public DeviceOps(GpuDevice device)
    {
        _device = device;
        _empty = device.Allocate<float>(64);
    }

    /// <summary>A zero-length view: "none" for optional arguments (bias, experts, shared expert).</summary>
    public ArrayView<float> NoFloats => _empty.View.SubView(0, 0);

    public ArrayView<int> NoInts => _empty.View.Cast<int>().SubView(0, 0);

    private KernelSet K => _device.Kernels;

    private AcceleratorStream Stream => _device.Accelerator.DefaultStream;

    /// <summary>The kernel that computes a product of <paramref name="rows"/> rows.</summary>
    public LinearKernel Choose(int rows)
    {
        var choice = _device.Options.Linear;
        if (choice == LinearKernel.Auto)
        {
            choice = !_device.IsCuda ? LinearKernel.Thread
                : rows <= _device.Options.GemvTokenLimit ? LinearKernel.Warp
                : LinearKernel.CuBlas;
        }

        return choice == LinearKernel.CuBlas && _device.Blas is null ? LinearKernel.Tiled : choice;
    }

    /// <summary>y[rows, N] = x[rows, K] · Wᵀ (+ bias) (+ y when <paramref name="accumulate"/>).</summary>
    public void Linear(MatrixView w, ArrayView<float> x, int rows, ArrayView<float> y, Workspace workspace, ArrayView<float> bias = default, bool accumulate = false)
    {
        if (rows == 0)
        {
            return;
        }

        Require(x.Length >= (long)rows * w.Cols, "x is shorter than rows × in_features");
        Require(y.Length >= (long)rows * w.Rows, "y is shorter than rows × out_features");
        bias = bias.IsValid ? bias : NoFloats;
        var args = new DotArgs
        {
            X = x, Experts = NoInts, Bias = bias, Y = y, K = w.Cols, OutPerRow = w.Rows, XDivisor = 1,
            Accumulate = accumulate ? 1 : 0, Outputs = checked(rows * w.Rows),
        };
        var kernel = Choose(rows);
        var rounds = RoundsActivations(w, rows, kernel);
        if (rounds && kernel != LinearKernel.CuBlas)
        {
            args.X = workspace.Floats((long)rows * w.Cols);
            K.RoundToBf16(rows * w.Cols, x, args.X);
        }

        switch (kernel)
        {
            case LinearKernel.Thread:
                DotThread(args, w);
                break;
            case LinearKernel.Warp:
                DotWarp(args, w);
                break;
            case LinearKernel.Tiled:
                Tiled(args, w, rows);
                break;
            default:
                CuBlasGemm(w, x, rows, y, bias, accumulate, rounds, workspace);
                break;
        }
    }

    /// <summary>
    /// Expert projections of routed pairs straight from the device's routing: y[p, :] = W_{experts[p]} · x[p / xDivisor],
    /// W the expert's block of <paramref name="rowsPerExpert"/> rows of <paramref name="stacked"/>.
    /// </summary>
    public void ExpertDots(MatrixView stacked, int rowsPerExpert, ArrayView<float> x, int xDivisor, ArrayView<int> experts, int pairs, ArrayView<float> y)
    {
        var args = new DotArgs
        {
            X = x, Experts = experts, Bias = NoFloats, Y = y, K = stacked.Cols, OutPerRow = rowsPerExpert, XDivisor = xDivisor,
            RowsPerExpert = rowsPerExpert, Outputs = checked(pairs * rowsPerExpert),
        };
        if (Choose(pairs) == LinearKernel.Thread)
        {
            DotThread(args, stacked);
        }
        else
        {
            DotWarp(args, stacked);
        }
    }

    public void Embedding(MatrixView table, ArrayView<int> ids, int tokens, ArrayView<float> hidden)
    {
        var count = tokens * table.Cols;
        if (table.IsBf16)
        {
            K.Bf16.Embedding(count, ids, new Bf16Weights(table.Bf16), hidden, table.Cols);
        }
        else
        {
            K.F32.Embedding(count, ids, new F32Weights(table.F32), hidden, table.Cols);
        }
    }

    /// <summary>RMSNorm of <paramref name="rows"/> rows of <paramref name="weight"/>.Length values (y may alias x).</summary>
    public void RmsNorm(ArrayView<float> x, int xStride, ArrayView<float> y, int yStride, int rows, ArrayView<float> weight, float eps)
    {
        if (rows == 0)
        {
            return;
        }

        var args = new NormArgs { X = x, Y = y, Weight = weight, Width = weight.IntLength, XStride = xStride, YStride = yStride, Eps = eps };
        K.RmsNorm(new KernelConfig(rows, _device.GroupSize), args);
    }

    public void Rope(RopeArgs args, int tokens) => K.Rope(tokens * args.Heads * args.Half, args);

    /// <summary>act[rows, I] = silu(gate) · up from rows of [gate | up].</summary>
    public void SwiGlu(ArrayView<float> gateUp, ArrayView<float> act, int rows, int intermediate) =>
        K.SwiGlu(rows * intermediate, gateUp, act, intermediate);

    public void Add(ArrayView<float> x, ArrayView<float> y) => K.Add(x.IntLength, x, y);

    public void Clamp(ArrayView<float> x, float limit) => K.Clamp(x.IntLength, x, limit);

    public void CopyRows(ArrayView<float> source, int sourceStride, ArrayView<float> target, int targetStride, int rows, int width) =>
        K.CopyRows(rows * width, source, sourceStride, target, targetStride, width);

    /// <summary>
    /// Attention of <paramref name="tokens"/> queries from position args.Start (<see cref="AttentionArgs"/>, its
    /// Scores and ScoreStride set here). The scores of one query hold every position up to the last, so the
    /// queries run in chunks whose scores fit <see cref="GpuOptions.AttentionScratchBytes"/>: a long prefill
    /// needs chunk·heads·positions floats of scratch, not T·heads·positions. Each (query, head) is computed
    /// the same way whatever the chunk, so the results do not depend on it.
    /// </summary>
    public void Attention(AttentionArgs args, int tokens, Workspace workspace)
    {
        var positions = args.Start + tokens;
        var perToken = (long)args.Heads * positions;
        var chunk = (int)Math.Clamp(_device.Options.AttentionScratchBytes / sizeof(float) / perToken, 1, tokens);
        var (q, output, start) = (args.Q, args.Output, args.Start);
        args.Scores = workspace.Floats(chunk * perToken);
        args.ScoreStride = positions;
        for (var first = 0; first < tokens; first += chunk)
        {
            var count = Math.Min(chunk, tokens - first);
            args.Q = q.SubView((long)first * args.Heads * args.KeyDim, (long)count * args.Heads * args.KeyDim);
            args.Output = output.SubView((long)first * args.Heads * args.ValueDim, (long)count * args.Heads * args.ValueDim);
            args.Start = start + first;
            K.Attention(new KernelConfig(count * args.Heads, _device.GroupSize), args);
        }
    }

    public void MlaQuery(MatrixView kvB, ArrayView<float> queries, ArrayView<float> absorbed, int tokens, int heads, int rank, int ropeDim, int nopeDim, int valueDim)
    {
        var count = tokens * heads * (rank + ropeDim);
        if (kvB.IsBf16)
        {
            K.Bf16.MlaQuery(count, queries, new Bf16Weights(kvB.Bf16), absorbed, heads, rank, ropeDim, nopeDim, valueDim);
        }
        else
        {
            K.F32.MlaQuery(count, queries, new F32Weights(kvB.F32), absorbed, heads, rank, ropeDim, nopeDim, valueDim);
        }
    }

    public void MlaValue(MatrixView kvB, ArrayView<float> context, ArrayView<float> output, int tokens, int heads, int rank, int nopeDim, int valueDim)
    {
        var count = tokens * heads * valueDim;
        if (kvB.IsBf16)
        {
            K.Bf16.MlaValue(count, context, new Bf16Weights(kvB.Bf16), output, heads, rank, nopeDim, valueDim);
        }
        else
        {
            K.F32.MlaValue(count, context, new F32Weights(kvB.F32), output, heads, rank, nopeDim, valueDim);
        }
    }

    /// <summary>Routes args.Tokens tokens, a warp each.</summary>
    public void Route(RouteArgs args) => K.Route(WarpConfig(args.Tokens), args);

    /// <summary>counts[e] = how many of <paramref name="experts"/> (the routing's (token, slot) pairs) are e; a group per expert.</summary>
    public void CountExperts(ArrayView<int> experts, ArrayView<int> counts) =>
        K.CountExperts(new KernelConfig(counts.IntLength, _device.GroupSize), experts, counts);

    /// <summary>The pairs grouped by expert, in pair order within each (see <see cref="MoeKernels.Permute"/>); a group per expert.</summary>
    public void Permute(ArrayView<int> experts, ArrayView<int> counts, ArrayView<int> rowOfPair, ArrayView<int> pairOfRow, ArrayView<int> starts, ArrayView<int> active) =>
        K.Permute(new KernelConfig(counts.IntLength, _device.GroupSize), experts, counts, rowOfPair, pairOfRow, starts, active);

    /// <summary>
    /// The experts' products over rows grouped by expert (<see cref="Permute"/>), read from the device's
    /// permutation: y[r, :] = W_e · x[r, :] for each row r of expert e, W_e rows [e·N, (e+1)·N) of <paramref name="stacked"/>.
    /// </summary>
    public void ExpertRows(MatrixView stacked, int rowsPerExpert, ArrayView<float> x, ArrayView<int> counts, ArrayView<int> starts, ArrayView<int> active, ArrayView<float> y)
    {
        var args = new ExpertRowsArgs
        {
            X = x, Counts = counts, Starts = starts, Active = active, Y = y, K = stacked.Cols, N = rowsPerExpert, Slots = active.IntLength,
        };
        var config = WarpConfig(checked(args.Slots * rowsPerExpert));
        if (stacked.IsBf16)
        {
            K.Bf16.ExpertRows(config, args, new Bf16Weights(stacked.Bf16));
        }
        else
        {
            K.F32.ExpertRows(config, args, new F32Weights(stacked.F32));
        }
    }

    public void Gather(ArrayView<float> x, ArrayView<int> pairOfRow, ArrayView<float> rows, int count, int width, int topK) =>
        K.Gather(count * width, x, pairOfRow, rows, width, topK);

    public void Combine(CombineArgs args, int tokens) => K.Combine(tokens * args.Width, args);

    /// <summary>The argmax of each of <paramref name="rows"/> rows of logits into tokens.</summary>
    public void Argmax(ArrayView<float> logits, ArrayView<int> tokens, int rows, int vocab) =>
        K.Argmax(new KernelConfig(rows, Math.Min(_device.Accelerator.MaxNumThreadsPerGroup, 1024)), logits, tokens, vocab);

    public void Sample(ArrayView<float> logits, ArrayView<float> uniforms, ArrayView<int> tokens, int rows, int vocab, float temperature) =>
        K.Sample(new KernelConfig(rows, Math.Min(_device.Accelerator.MaxNumThreadsPerGroup, 1024)), logits, uniforms, tokens, vocab, temperature);

    private void DotThread(DotArgs args, MatrixView w)
    {
        if (w.IsBf16)
        {
            K.Bf16.DotThread(args.Outputs, args, new Bf16Weights(w.Bf16));
        }
        else
        {
            K.F32.DotThread(args.Outputs, args, new F32Weights(w.F32));
        }
    }

    /// <summary>Groups of whole warps, a warp for each of <paramref name="items"/>.</summary>
    private KernelConfig WarpConfig(int items)
    {
        var warps = _device.GroupSize / _device.Accelerator.WarpSize;
        return new KernelConfig(Math.Max(1, (items + warps - 1) / warps), _device.GroupSize);
    }

    private void DotWarp(DotArgs args, MatrixView w)
    {
        var config = WarpConfig(args.Outputs);
        if (w.IsBf16)
        {
            K.Bf16.DotWarp(config, args, new Bf16Weights(w.Bf16));
        }
        else
        {
            K.F32.DotWarp(config, args, new F32Weights(w.F32));
        }
    }

    private void Tiled(DotArgs args, MatrixView w, int rows)
    {
        var tile = (int)Math.Sqrt(Math.Min(256, _device.Accelerator.MaxNumThreadsPerGroup));
        var config = new KernelConfig(
            new Index3D((w.Rows + tile - 1) / tile, (rows + tile - 1) / tile, 1),
            new Index3D(tile * tile, 1, 1),
            SharedMemoryConfig.RequestDynamic<float>(2 * tile * tile));
        if (w.IsBf16)
        {
            K.Bf16.Tiled(config, args, new Bf16Weights(w.Bf16), rows, tile);
        }
        else
        {
            K.F32.Tiled(config, args, new F32Weights(w.F32), rows, tile);
        }
    }

    /// <summary>
    /// Whether a product rounds its activations to bf16: under <see cref="GpuPrecision.Bf16Activations"/>, with
    /// bf16 weights, when it is a GEMM (more rows than <see cref="GpuOptions.GemvTokenLimit"/>, or a GEMM kernel
    /// chosen), whichever kernel computes it, so ILGPU's CPU accelerator rounds where CUDA would.
    /// </summary>
    private bool RoundsActivations(MatrixView w, int rows, LinearKernel kernel) =>
        w.IsBf16 && _device.Options.Precision == GpuPrecision.Bf16Activations
        && (rows > _device.Options.GemvTokenLimit || kernel is LinearKernel.Tiled or LinearKernel.CuBlas);

    /// <summary>
    /// cuBLAS: f32 weights as an f32 GEMM; bf16 weights against the activations split into bf16 hi and lo
    /// rows (one tensor-core GEMM of 2·rows, so the weights are read once, then the halves summed), which
    /// keeps f32-level accuracy, or under <see cref="GpuPrecision.Bf16Activations"/> rounded to bf16 (one
    /// GEMM of rows, straight into y when there is no bias).
    /// </summary>
    private void CuBlasGemm(MatrixView w, ArrayView<float> x, int rows, ArrayView<float> y, ArrayView<float> bias, bool accumulate, bool roundActivations, Workspace workspace)
    {
        var blas = _device.Blas!;
        var (n, k) = (w.Rows, w.Cols);
        var count = rows * n;
        if (!w.IsBf16)
        {
            if (bias.Length == 0)
            {
                blas.Gemm(w.Address, CuBlas.Float32, DevicePointers.Of(x), CuBlas.Float32, DevicePointers.Of(y), rows, n, k, accumulate ? 1f : 0f);
                return;
            }

            var product = workspace.Floats(count);
            blas.Gemm(w.Address, CuBlas.Float32, DevicePointers.Of(x), CuBlas.Float32, DevicePointers.Of(product), rows, n, k);
            K.Finish(count, product, bias, y, count, n, 0, accumulate ? 1 : 0);
            return;
        }

        var halves = roundActivations ? 1 : 2;
        var split = workspace.UShorts((long)halves * rows * k);
        K.SplitBf16(rows * k, x, split, rows * k, halves);
        if (halves == 1 && bias.Length == 0)
        {
            blas.Gemm(w.Address, CuBlas.BFloat16, DevicePointers.Of(split), CuBlas.BFloat16, DevicePointers.Of(y), rows, n, k, accumulate ? 1f : 0f);
            return;
        }

        var parts = workspace.Floats((long)halves * count);
        blas.Gemm(w.Address, CuBlas.BFloat16, DevicePointers.Of(split), CuBlas.BFloat16, DevicePointers.Of(parts), halves * rows, n, k);
        K.Finish(count, parts, bias, y, count, n, halves - 1, accumulate ? 1 : 0);
    }

    /// <summary>
    /// The experts' products over rows grouped by expert (<see cref="Permute"/>), the per-expert counts on
    /// the host: y rows [o, o + n) = W_e · x rows [o, o + n) for each expert e with n = counts[e] rows, o the
    /// rows of the experts before it, W_e rows [e·N, (e+1)·N) of <paramref name="stacked"/>. When every
    /// expert's product is a bf16 cuBLAS GEMM, the rows are split once for all of them and finished once
    /// (each expert's hi and lo rows side by side, one GEMM each): a split, a GEMM per expert and a finish,
    /// not the three launches per expert of <see cref="Linear"/>, which the others run as.
    /// </summary>
    public void ExpertGemms(MatrixView stacked, int rowsPerExpert, ArrayView<float> x, int[] counts, RowsByExpert layout, ArrayView<float> y, Workspace workspace)
    {
        var k = stacked.Cols;
        var rows = counts.Sum();
        var fewest = counts.Where(n => n > 0).DefaultIfEmpty(0).Min();
        if (rows == 0 || !stacked.IsBf16 || Choose(fewest) != LinearKernel.CuBlas)
        {
            ForEachExpert(counts, (e, offset, n) => Linear(
                stacked.SliceRows(e * rowsPerExpert, rowsPerExpert), x.SubView((long)offset * k, (long)n * k), n,
                y.SubView((long)offset * rowsPerExpert, (long)n * rowsPerExpert), workspace));
            return;
        }

        var blas = _device.Blas!;
        var round = RoundsActivations(stacked, fewest, LinearKernel.CuBlas);
        var halves = round ? 1 : 2;
        var split = workspace.UShorts((long)halves * rows * k);
        if (round)
        {
            K.SplitBf16(rows * k, x, split, rows * k, 1);
        }
        else
        {
            K.SplitBf16ByExpert(rows * k, x, split, layout.Experts, layout.PairOfRow, layout.Starts, layout.Counts, k);
        }

        // Rounded: each expert's rows straight into y. Exact: its [hi; lo] (rows [2o, 2o + 2n)) into parts, finished once.
        var parts = round ? y : workspace.Floats((long)halves * rows * rowsPerExpert);
        ForEachExpert(counts, (e, offset, n) => blas.Gemm(
            stacked.SliceRows(e * rowsPerExpert, rowsPerExpert).Address, CuBlas.BFloat16,
            DevicePointers.Of(split.SubView((long)halves * offset * k, (long)halves * n * k)), CuBlas.BFloat16,
            DevicePointers.Of(parts.SubView((long)halves * offset * rowsPerExpert, (long)halves * n * rowsPerExpert)),
            halves * n, rowsPerExpert, k));
        if (!round)
        {
            K.FinishByExpert(rows * rowsPerExpert, parts, y, layout.Experts, layout.PairOfRow, layout.Starts, layout.Counts, rowsPerExpert);
        }
    }

    /// <summary>Calls <paramref name="product"/>(expert, first row, rows) for each expert with rows, in expert order.</summary>
    private static void ForEachExpert(int[] counts, Action<int, int, int> product)
    {
        var offset = 0;
        for (var e = 0; e < counts.Length; e++)
        {
            if (counts[e] > 0)
            {
                product(e, offset, counts[e]);
                offset += counts[e];
            }
        }
    }

    private static void Require(bool condition, string message)
    {
        if (!condition)
        {
            throw new ArgumentException(message);
        }
    }
}
