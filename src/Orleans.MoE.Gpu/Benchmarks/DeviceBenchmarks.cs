using System.Diagnostics;
using ILGPU.Runtime;
using Orleans.MoE.Gpu.Blas;
using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Gpu.Layers;

namespace Orleans.MoE.Gpu.Benchmarks;

/// <summary>
/// Measurements on a device, each returned as named figures (snake_case keys, for JSON): copy bandwidth, a
/// GEMV, a large bf16 GEMM, the linear layer's GEMM, an MoE block at several token counts against the
/// bandwidth and GEMM figures of the same run, and decoding a whole model. Timings are medians of
/// synchronised runs after a warm-up. Used by <c>moe bench moe-block / decode --device</c> and <c>gpu-check bench</c>.
/// </summary>
public static class DeviceBenchmarks
{
    /// <summary>Token counts of an MoE block measurement on real shapes.</summary>
    public static IReadOnlyList<int> BlockTokens { get; } = [1, 16, 256, 4096];

    /// <summary>Token counts on scaled-down shapes (ILGPU's CPU accelerator simulates every thread).</summary>
    public static IReadOnlyList<int> SmallBlockTokens { get; } = [1, 16];

    /// <summary>The median of <paramref name="repeats"/> timings of <paramref name="body"/> (after a warm-up), each synchronised, in milliseconds.</summary>
    public static double Time(GpuDevice gpu, Action body, int repeats = 20, int inner = 1)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        ArgumentNullException.ThrowIfNull(body);
        body();
        gpu.Synchronize();
        var samples = new List<double>();
        for (var r = 0; r < repeats; r++)
        {
            var watch = Stopwatch.StartNew();
            for (var i = 0; i < inner; i++)
            {
                body();
            }

            gpu.Synchronize();
            samples.Add(watch.Elapsed.TotalMilliseconds / inner);
        }

        samples.Sort();
        return samples[samples.Count / 2];
    }

    /// <summary>Device-to-device copy of <paramref name="floats"/> floats; tb_per_s counts read and write.</summary>
    public static Dictionary<string, object?> CopyBandwidth(GpuDevice gpu, long floats)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        using var a = gpu.Allocate<float>(floats);
        using var b = gpu.Allocate<float>(floats);
        var ms = Time(gpu, () => a.View.CopyTo(b.View));
        return new() { ["bytes"] = floats * 4, ["ms"] = ms, ["tb_per_s"] = 2.0 * floats * 4 / (ms * 1e-3) / 1e12 };
    }

    /// <summary>One row through an [N, K] bf16 matrix with the kernel the device picks for one row.</summary>
    public static Dictionary<string, object?> Gemv(GpuDevice gpu, RandomModels random, (int N, int K) shape)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        ArgumentNullException.ThrowIfNull(random);
        using var w = DeviceMatrix.Upload(gpu, random.Matrix(shape.N, shape.K));
        using var workspace = new Workspace(gpu);
        var x = workspace.Floats(shape.K);
        var y = workspace.Floats(shape.N);
        x.CopyFromCPU(Enumerable.Range(0, shape.K).Select(i => MathF.Sin(i)).ToArray());
        var ms = Time(gpu, () => gpu.Ops.Linear(w.View, x, 1, y, workspace), repeats: 50, inner: 10);
        return new() { ["n"] = shape.N, ["k"] = shape.K, ["kernel"] = gpu.Ops.Choose(1).ToString(), ["ms"] = ms, ["tb_per_s"] = w.Bytes / (ms * 1e-3) / 1e12 };
    }

    /// <summary>
    /// A large square bf16 GEMM (<paramref name="size"/>³): cuBLAS's <c>cublasGemmEx</c> (bf16 in, f32 compute)
    /// where the device has it, else the device's own linear layer at T = <paramref name="size"/> rows
    /// (the tiled GEMM, or a thread per output on ILGPU's CPU accelerator). The GEMM peak of the run.
    /// </summary>
    public static Dictionary<string, object?> Gemm(GpuDevice gpu, RandomModels random, int size)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        ArgumentNullException.ThrowIfNull(random);
        if (gpu.Blas is not { } blas)
        {
            var own = LinearThroughput(gpu, random, (size, size, size));
            return new()
            {
                ["m"] = size,
                ["n"] = size,
                ["k"] = size,
                ["kernel"] = own["kernel"],
                ["dtype"] = "bf16 weights, f32 activations",
                ["ms"] = own["ms"],
                ["tflop_per_s"] = own["tflop_per_s_useful"],
            };
        }

        using var a = DeviceMatrix.Upload(gpu, random.Matrix(size, size));
        using var b = DeviceMatrix.Upload(gpu, random.Matrix(size, size));
        using var c = gpu.Allocate<float>((long)size * size);
        var ms = Time(gpu, () => blas.Gemm(a.View.Address, CuBlas.BFloat16, b.View.Address, CuBlas.BFloat16, c.Address(), size, size, size), repeats: 10);
        return new()
        {
            ["m"] = size,
            ["n"] = size,
            ["k"] = size,
            ["kernel"] = "cuBLAS",
            ["dtype"] = "bf16 in, f32 out, f32 compute",
            ["ms"] = ms,
            ["tflop_per_s"] = 2.0 * size * size * size / (ms * 1e-3) / 1e12,
        };
    }

    /// <summary>The linear layer ([N, K] bf16 weights, T rows of f32 activations) as the model runs it.</summary>
    public static Dictionary<string, object?> LinearThroughput(GpuDevice gpu, RandomModels random, (int N, int K, int T) shape)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        ArgumentNullException.ThrowIfNull(random);
        using var w = DeviceMatrix.Upload(gpu, random.Matrix(shape.N, shape.K));
        using var workspace = new Workspace(gpu);
        var x = workspace.Floats((long)shape.T * shape.K);
        var y = workspace.Floats((long)shape.T * shape.N);
        x.CopyFromCPU(Enumerable.Range(0, shape.T * shape.K).Select(i => MathF.Sin(i)).ToArray());
        var mark = workspace.Mark();
        var ms = Time(gpu, () =>
        {
            workspace.Release(mark);
            gpu.Ops.Linear(w.View, x, shape.T, y, workspace);
        }, repeats: 10);
        return new()
        {
            ["n"] = shape.N,
            ["k"] = shape.K,
            ["t"] = shape.T,
            ["kernel"] = gpu.Ops.Choose(shape.T).ToString(),
            ["precision"] = gpu.Options.Precision.Name(),
            ["note"] = (gpu.HasCuBlas, gpu.Options.Precision) switch
            {
                (true, GpuPrecision.Exact) => "f32 activations split into bf16 hi+lo: one bf16 GEMM of 2T rows",
                (true, _) => "activations rounded to bf16: one bf16 GEMM of T rows",
                (false, GpuPrecision.Exact) => "f32 activations, bf16 weights widened in the kernel",
                _ => "activations rounded to bf16, bf16 weights widened in the kernel",
            },
            ["ms"] = ms,
            ["tflop_per_s_useful"] = 2.0 * shape.T * shape.N * shape.K / (ms * 1e-3) / 1e12,
        };
    }

    /// <summary>
    /// One MoE block of <paramref name="shape"/> (random bf16 weights, softmax top-k routing) at each of
    /// <paramref name="tokens"/>. Per T: time, weight bytes read if every routed expert is distinct, the
    /// bandwidth and useful FLOP/s that gives. With the run's <paramref name="copy"/> bandwidth and
    /// <paramref name="gemm"/> peak: the smallest T as a fraction of the bandwidth roofline (weights read
    /// once at copy speed) and the largest T as a fraction of the GEMM peak.
    /// </summary>
    public static Dictionary<string, object?> MoeBlock(GpuDevice gpu, RandomModels random, ModelShape shape, IReadOnlyList<int> tokens,
        Dictionary<string, object?>? copy = null, Dictionary<string, object?>? gemm = null)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        ArgumentNullException.ThrowIfNull(random);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(tokens);
        using var block = new DeviceMoeBlock(gpu, random.MoeBlock(shape));
        using var workspace = new Workspace(gpu);
        var result = new Dictionary<string, object?> { ["shape"] = shape.Name, ["hidden"] = shape.Hidden, ["ffn"] = shape.Intermediate, ["experts"] = shape.Experts, ["top_k"] = shape.TopK, ["dtype"] = "bf16", ["precision"] = gpu.Options.Precision.Name() };
        var expertBytes = 3L * shape.Hidden * shape.Intermediate * 2;
        foreach (var t in tokens)
        {
            var ms = TimeBlock(gpu, block, workspace, shape, t, repeats: t >= 256 ? 10 : 30);
            var distinct = Math.Min(shape.Experts, t * shape.TopK);
            var bytes = ((long)shape.Experts * shape.Hidden * 2) + (expertBytes * distinct);
            result[$"t{t}_ms"] = ms;
            result[$"t{t}_expert_path"] = block.PathFor(t).ToString();
            result[$"t{t}_tb_per_s_if_distinct_experts"] = bytes / (ms * 1e-3) / 1e12;
            result[$"t{t}_tflop_per_s"] = 2.0 * t * shape.TopK * 3 * shape.Hidden * shape.Intermediate / (ms * 1e-3) / 1e12;
        }

        if (copy?["tb_per_s"] is double bandwidth && tokens.Count > 0)
        {
            var first = tokens.Min();
            result["copy_tb_per_s"] = bandwidth;
            result[$"t{first}_fraction_of_bandwidth_roofline"] = (double)result[$"t{first}_tb_per_s_if_distinct_experts"]! / bandwidth;
        }

        if (gemm?["tflop_per_s"] is double peak && tokens.Count > 0)
        {
            var last = tokens.Max();
            result["gemm_tflop_per_s"] = peak;
            result[$"t{last}_fraction_of_gemm_peak"] = (double)result[$"t{last}_tflop_per_s"]! / peak;
        }

        return result;
    }

    /// <summary>
    /// One MoE block of <paramref name="shape"/> with each expert path forced in turn at each of
    /// <paramref name="tokens"/> (t{T}_{path}_ms), beside the path the block's limits choose (t{T}_chosen_path)
    /// and the fastest measured (t{T}_fastest_path): the data for tuning <see cref="GpuOptions.ExpertPairTokenLimit"/>
    /// and <see cref="GpuOptions.ExpertGemvRowsLimit"/> on a device.
    /// </summary>
    public static Dictionary<string, object?> ExpertPaths(GpuDevice gpu, RandomModels random, ModelShape shape, IReadOnlyList<int> tokens)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        ArgumentNullException.ThrowIfNull(random);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(tokens);
        using var block = new DeviceMoeBlock(gpu, random.MoeBlock(shape));
        using var workspace = new Workspace(gpu);
        var result = new Dictionary<string, object?> { ["shape"] = shape.Name, ["precision"] = gpu.Options.Precision.Name() };
        foreach (var t in tokens)
        {
            var fastest = (Path: "", Ms: double.PositiveInfinity);
            foreach (var path in Enum.GetValues<ExpertPath>())
            {
                block.ForcedPath = path;
                var ms = TimeBlock(gpu, block, workspace, shape, t, repeats: 10);
                result[$"t{t}_{path.ToString().ToLowerInvariant()}_ms"] = ms;
                fastest = ms < fastest.Ms ? (path.ToString(), ms) : fastest;
            }

            block.ForcedPath = null;
            result[$"t{t}_chosen_path"] = block.PathFor(t).ToString();
            result[$"t{t}_fastest_path"] = fastest.Path;
        }

        return result;
    }

    /// <summary>The median time of the block's forward over <paramref name="t"/> tokens (fixed activations), its workspace rewound each run.</summary>
    private static double TimeBlock(GpuDevice gpu, DeviceMoeBlock block, Workspace workspace, ModelShape shape, int t, int repeats)
    {
        workspace.Reset();
        var x = workspace.Floats((long)t * shape.Hidden);
        var hidden = workspace.Floats((long)t * shape.Hidden);
        x.CopyFromCPU(Enumerable.Range(0, t * shape.Hidden).Select(i => MathF.Sin(i * 0.37f)).ToArray());
        var mark = workspace.Mark();
        return Time(gpu, () =>
        {
            workspace.Release(mark);
            block.Forward(new DeviceStep(gpu.Ops, workspace, t, 0), x, hidden, null);
        }, repeats);
    }

    /// <summary>
    /// Greedy single-sequence decoding of <paramref name="model"/> on its device: a 16-token prefill, a warm-up
    /// step, then <paramref name="steps"/> timed steps. <paramref name="weightBytesPerToken"/> (the weights one
    /// token reads) gives the bandwidth; with the run's <paramref name="copy"/> bandwidth, the fraction of that roofline.
    /// </summary>
    public static Dictionary<string, object?> Decode(GpuModel model, long weightBytesPerToken, int steps, Dictionary<string, object?>? copy = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(steps);
        using var sequence = model.CreateSequence(64 + steps);
        var prompt = Enumerable.Range(0, 16).Select(i => 3 + (i * 7919 % (model.VocabSize - 3))).ToArray();
        var prefill = Stopwatch.StartNew();
        var next = model.NextToken(prompt, sequence);
        var prefillMs = prefill.Elapsed.TotalMilliseconds;
        next = model.NextToken([next], sequence); // warm the decode path
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < steps; i++)
        {
            next = model.NextToken([next], sequence);
        }

        var seconds = watch.Elapsed.TotalSeconds;
        var result = new Dictionary<string, object?>
        {
            ["layers"] = model.LayerCount,
            ["precision"] = model.Device.Options.Precision.Name(),
            ["weights_gib"] = model.WeightBytes / (double)(1L << 30),
            ["prefill_16_ms"] = prefillMs,
            ["decode_steps"] = steps,
            ["decode_tokens_per_s"] = steps / seconds,
            ["decode_ms_per_token"] = seconds * 1e3 / steps,
            ["weight_bytes_per_token"] = weightBytesPerToken,
            ["decode_tb_per_s"] = weightBytesPerToken * steps / seconds / 1e12,
            ["last_token"] = next,
        };
        if (copy?["tb_per_s"] is double bandwidth)
        {
            result["copy_tb_per_s"] = bandwidth;
            result["fraction_of_bandwidth_roofline"] = (double)result["decode_tb_per_s"]! / bandwidth;
        }

        return result;
    }
}
