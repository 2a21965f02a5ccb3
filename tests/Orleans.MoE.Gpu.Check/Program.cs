using System.Diagnostics;
using System.Text.Json;
using ILGPU.Runtime;
using Orleans.MoE.Gpu;
using Orleans.MoE.Gpu.Blas;
using Orleans.MoE.Gpu.Check;
using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Gpu.Layers;
using Orleans.MoE.Models;
using Orleans.MoE.Models.Verification;

// gpu-check verify [--device D] [--variants] DIR...   every model directory against its reference.safetensors
// gpu-check bench  [--device D] [--small] [--decode-layers N]   benchmark JSON (one object per line)
if (args.Length == 0 || args[0] is not ("verify" or "bench"))
{
    Console.Error.WriteLine("usage: gpu-check verify [--device cuda|ilgpu-cpu] [--variants] DIR... | gpu-check bench [--device cuda|ilgpu-cpu] [--small] [--decode-layers N]");
    return 2;
}

var device = DeviceKinds.Parse(Option(args, "--device") ?? "cuda");
var positional = args.Skip(1).Where((a, i) => !a.StartsWith("--", StringComparison.Ordinal) && (i == 0 || args[i] is not ("--device" or "--decode-layers"))).ToList();
return args[0] == "verify"
    ? Verify(device, positional, args.Contains("--variants"))
    : Bench(device, args.Contains("--small"), int.TryParse(Option(args, "--decode-layers"), out var layers) ? layers : (int?)null);

static string? Option(string[] args, string name)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

static int Verify(DeviceKind kind, List<string> directories, bool variants)
{
    var settings = new List<(string Name, GpuOptions Options)> { ("auto", GpuOptions.Default) };
    if (variants)
    {
        settings.Add(("tiled-gemm", new GpuOptions { Linear = LinearKernel.Tiled }));
        settings.Add(("gemm-everywhere", new GpuOptions { GemvTokenLimit = 0, ExpertPairTokenLimit = 0 }));
    }

    var failed = 0;
    var total = 0;
    foreach (var (variant, options) in settings)
    {
        using var choice = GpuDevice.Choose(kind, options);
        Console.WriteLine($"# device {variant}: {choice.Reason}");
        if (choice.Device is not { } gpu)
        {
            return 3;
        }

        foreach (var directory in directories)
        {
            var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory)));
            var watch = Stopwatch.StartNew();
            using var cpu = ModelLoader.Load(directory);
            using var model = GpuModel.Upload(gpu, cpu);
            var checks = ReferenceVerifier.Verify(model, Path.Combine(directory, "reference.safetensors"), name).ToList();
            foreach (var check in checks.Where(c => !c.Passed))
            {
                Console.WriteLine($"FAIL {variant} {name} {check.Check} max|diff| {check.MaxAbsDiff:g3} (tolerance {check.Tolerance:g3}) {check.Detail}");
            }

            var worst = checks.Where(c => c.Tolerance > 0).Select(c => c.MaxAbsDiff / c.Tolerance).DefaultIfEmpty(0).Max();
            Console.WriteLine($"{(checks.All(c => c.Passed) ? "PASS" : "FAIL")} {variant} {name}: {checks.Count(c => c.Passed)}/{checks.Count} checks, worst diff {worst:0.000} of tolerance, {watch.Elapsed.TotalSeconds:0.0} s");
            failed += checks.Count(c => !c.Passed);
            total += checks.Count;
        }
    }

    Console.WriteLine($"{total - failed} of {total} checks passed");
    return failed == 0 ? 0 : 1;
}

static int Bench(DeviceKind kind, bool small, int? decodeLayers)
{
    using var choice = GpuDevice.Choose(kind);
    Emit(new Dictionary<string, object?> { ["bench"] = "device", ["device"] = choice.Reason });
    if (choice.Device is not { } gpu)
    {
        return 3;
    }

    using var random = new RandomModels(small ? 1L << 20 : 1L << 29);
    Run("copy", () => CopyBandwidth(gpu, small ? 1L << 22 : 1L << 28));
    Run("gemv", () => Gemv(gpu, random, small ? (256, 64) : (14336, 4096)));
    Run("gemm", () => Gemm(gpu, random, small ? 64 : 8192));
    Run("linear", () => LinearThroughput(gpu, random, small ? (256, 64, 32) : (14336, 4096, 4096)));
    foreach (var shape in small ? [ModelShape.Tiny] : new[] { ModelShape.Mixtral8x7B, ModelShape.Qwen3_30B_A3B })
    {
        Run("moe-block", () => MoeBlock(gpu, random, shape, small ? [1, 16] : [1, 16, 256, 4096]));
    }

    foreach (var shape in small ? [ModelShape.Tiny] : new[] { ModelShape.Mixtral8x7B, ModelShape.Qwen3_30B_A3B })
    {
        Run("decode", () => Decode(gpu, random, shape, decodeLayers ?? shape.Layers, small ? 4 : 32));
    }

    return 0;

    static void Run(string name, Func<Dictionary<string, object?>> bench)
    {
        try
        {
            var result = bench();
            result["bench"] = name;
            Emit(result);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Emit(new Dictionary<string, object?> { ["bench"] = name, ["error"] = $"{e.GetType().Name}: {e.Message.Split('\n')[0]}" });
        }
    }
}

// The median of `repeats` timings of `body` (after warm-ups), each synchronised, in milliseconds.
static double Time(GpuDevice gpu, Action body, int repeats = 20, int inner = 1)
{
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

static Dictionary<string, object?> CopyBandwidth(GpuDevice gpu, long floats)
{
    using var a = gpu.Allocate<float>(floats);
    using var b = gpu.Allocate<float>(floats);
    var ms = Time(gpu, () => ArrayViewExtensions.CopyTo(a.View, b.View));
    return new() { ["bytes"] = floats * 4, ["ms"] = ms, ["tb_per_s"] = 2.0 * floats * 4 / (ms * 1e-3) / 1e12 };
}

static Dictionary<string, object?> Gemv(GpuDevice gpu, RandomModels random, (int N, int K) shape)
{
    using var w = DeviceMatrix.Upload(gpu, random.Matrix(shape.N, shape.K));
    using var workspace = new Workspace(gpu);
    var x = workspace.Floats(shape.K);
    var y = workspace.Floats(shape.N);
    ArrayViewExtensions.CopyFromCPU(x, Enumerable.Range(0, shape.K).Select(i => MathF.Sin(i)).ToArray());
    var ms = Time(gpu, () => gpu.Ops.Linear(w.View, x, 1, y, workspace), repeats: 50, inner: 10);
    return new() { ["n"] = shape.N, ["k"] = shape.K, ["kernel"] = gpu.Ops.Choose(1).ToString(), ["ms"] = ms, ["tb_per_s"] = w.Bytes / (ms * 1e-3) / 1e12 };
}

static Dictionary<string, object?> Gemm(GpuDevice gpu, RandomModels random, int size)
{
    if (gpu.Blas is not { } blas)
    {
        return new() { ["skipped"] = gpu.BlasDescription };
    }

    using var a = DeviceMatrix.Upload(gpu, random.Matrix(size, size));
    using var b = DeviceMatrix.Upload(gpu, random.Matrix(size, size));
    using var c = gpu.Allocate<float>((long)size * size);
    var ms = Time(gpu, () => blas.Gemm(a.View.Address, CuBlas.BFloat16, b.View.Address, CuBlas.BFloat16, c.Address(), size, size, size), repeats: 10);
    return new() { ["m"] = size, ["n"] = size, ["k"] = size, ["dtype"] = "bf16 in, f32 out, f32 compute", ["ms"] = ms, ["tflop_per_s"] = 2.0 * size * size * size / (ms * 1e-3) / 1e12 };
}

static Dictionary<string, object?> LinearThroughput(GpuDevice gpu, RandomModels random, (int N, int K, int T) shape)
{
    using var w = DeviceMatrix.Upload(gpu, random.Matrix(shape.N, shape.K));
    using var workspace = new Workspace(gpu);
    var x = workspace.Floats((long)shape.T * shape.K);
    var y = workspace.Floats((long)shape.T * shape.N);
    ArrayViewExtensions.CopyFromCPU(x, Enumerable.Range(0, shape.T * shape.K).Select(i => MathF.Sin(i)).ToArray());
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
        ["note"] = "f32 activations split into bf16 hi+lo: one bf16 GEMM of 2T rows",
        ["ms"] = ms,
        ["tflop_per_s_useful"] = 2.0 * shape.T * shape.N * shape.K / (ms * 1e-3) / 1e12,
    };
}

static Dictionary<string, object?> MoeBlock(GpuDevice gpu, RandomModels random, ModelShape shape, int[] tokens)
{
    using var block = new DeviceMoeBlock(gpu, random.MoeBlock(shape));
    using var workspace = new Workspace(gpu);
    var result = new Dictionary<string, object?> { ["shape"] = shape.Name, ["hidden"] = shape.Hidden, ["ffn"] = shape.Intermediate, ["experts"] = shape.Experts, ["top_k"] = shape.TopK };
    var expertBytes = 3L * shape.Hidden * shape.Intermediate * 2;
    foreach (var t in tokens)
    {
        workspace.Reset();
        var x = workspace.Floats((long)t * shape.Hidden);
        var hidden = workspace.Floats((long)t * shape.Hidden);
        ArrayViewExtensions.CopyFromCPU(x, Enumerable.Range(0, t * shape.Hidden).Select(i => MathF.Sin(i * 0.37f)).ToArray());
        var mark = workspace.Mark();
        var ms = Time(gpu, () =>
        {
            workspace.Release(mark);
            block.Forward(new DeviceStep(gpu.Ops, workspace, t, 0), x, hidden, null);
        }, repeats: t >= 256 ? 10 : 30);
        var distinct = Math.Min(shape.Experts, t * shape.TopK);
        var bytes = (long)shape.Experts * shape.Hidden * 2 + (expertBytes * Math.Min(distinct, shape.Experts));
        result[$"t{t}_ms"] = ms;
        result[$"t{t}_tb_per_s_if_distinct_experts"] = bytes / (ms * 1e-3) / 1e12;
        result[$"t{t}_tflop_per_s"] = 2.0 * t * shape.TopK * 3 * shape.Hidden * shape.Intermediate / (ms * 1e-3) / 1e12;
    }

    return result;
}

static Dictionary<string, object?> Decode(GpuDevice gpu, RandomModels random, ModelShape shape, int layers, int steps)
{
    var upload = Stopwatch.StartNew();
    using var model = random.Model(gpu, shape, layers);
    var uploadSeconds = upload.Elapsed.TotalSeconds;
    using var sequence = model.CreateSequence(64 + steps);
    var prompt = Enumerable.Range(0, 16).Select(i => (i * 7919) % shape.Vocab).ToArray();
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
    var attention = (long)shape.Hidden * shape.HeadDim * (2 * shape.Heads + 2 * shape.KvHeads) * 2;
    var perToken = layers * (attention + (long)shape.Experts * shape.Hidden * 2 + shape.TopK * 3L * shape.Hidden * shape.Intermediate * 2) + 2L * shape.Vocab * shape.Hidden;
    return new()
    {
        ["shape"] = shape.Name,
        ["layers"] = layers,
        ["weights_gib"] = model.WeightBytes / (double)(1L << 30),
        ["upload_s"] = uploadSeconds,
        ["prefill_16_ms"] = prefillMs,
        ["decode_steps"] = steps,
        ["decode_tokens_per_s"] = steps / seconds,
        ["decode_ms_per_token"] = seconds * 1e3 / steps,
        ["weight_bytes_per_token"] = perToken,
        ["decode_tb_per_s"] = perToken * steps / seconds / 1e12,
        ["last_token"] = next,
    };
}

static void Emit(Dictionary<string, object?> values)
{
    using var stream = new MemoryStream();
    using (var writer = new Utf8JsonWriter(stream))
    {
        writer.WriteStartObject();
        foreach (var (key, value) in values.OrderBy(p => p.Key == "bench" ? 0 : 1))
        {
            switch (value)
            {
                case null:
                    writer.WriteNull(key);
                    break;
                case string s:
                    writer.WriteString(key, s);
                    break;
                case double d:
                    writer.WriteNumber(key, double.Parse(d.ToString("G5", System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture));
                    break;
                case int i:
                    writer.WriteNumber(key, i);
                    break;
                case long l:
                    writer.WriteNumber(key, l);
                    break;
                default:
                    writer.WriteString(key, value.ToString());
                    break;
            }
        }

        writer.WriteEndObject();
    }

    Console.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
}
