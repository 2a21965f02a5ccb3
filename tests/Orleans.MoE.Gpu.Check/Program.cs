using System.Diagnostics;
using System.Text.Json;
using Orleans.MoE.Gpu;
using Orleans.MoE.Gpu.Benchmarks;
using Orleans.MoE.Gpu.Device;
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
        settings.Add(("grouped-gemv", new GpuOptions { ExpertPairTokenLimit = 0, ExpertGemvRowsLimit = int.MaxValue }));
        settings.Add(("gemm-everywhere", new GpuOptions { GemvTokenLimit = 0, ExpertPairTokenLimit = 0, ExpertGemvRowsLimit = 0 }));
        settings.Add(("bf16-activations", new GpuOptions { Precision = GpuPrecision.Bf16Activations }));
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
            // Bf16 activations hold a looser stated tolerance; their greedy ids may leave the reference at a
            // near-tie, so those are printed but not counted.
            var bf16 = options.Precision == GpuPrecision.Bf16Activations;
            var checks = ReferenceVerifier.Verify(model, Path.Combine(directory, "reference.safetensors"), name,
                bf16 ? GpuOptions.Bf16ActivationsTolerance : ReferenceVerifier.RelativeTolerance).ToList();
            foreach (var check in checks.Where(c => bf16 && !c.Passed && c.Check.EndsWith("greedy", StringComparison.Ordinal)))
            {
                Console.WriteLine($"NOTE {variant} {name} {check.Check} (not held under bf16 activations): {check.Detail}");
            }

            checks = [.. checks.Where(c => !bf16 || !c.Check.EndsWith("greedy", StringComparison.Ordinal))];
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
    var copy = Run("copy", () => DeviceBenchmarks.CopyBandwidth(gpu, small ? 1L << 22 : 1L << 28));
    Run("gemv", () => DeviceBenchmarks.Gemv(gpu, random, small ? (256, 64) : (14336, 4096)));
    var gemm = Run("gemm", () => DeviceBenchmarks.Gemm(gpu, random, small ? 64 : 8192));
    Run("linear", () => DeviceBenchmarks.LinearThroughput(gpu, random, small ? (256, 64, 32) : (14336, 4096, 4096)));
    var shapes = ModelShape.Real.Select(s => small ? s.Small() : s).ToList();
    foreach (var shape in shapes)
    {
        Run("moe-block", () => DeviceBenchmarks.MoeBlock(gpu, random, shape, small ? DeviceBenchmarks.SmallBlockTokens : DeviceBenchmarks.BlockTokens, copy, gemm));
    }

    foreach (var shape in shapes)
    {
        Run("expert-paths", () => DeviceBenchmarks.ExpertPaths(gpu, random, shape, small ? DeviceBenchmarks.SmallBlockTokens : [4, 16, 64, 256]));
    }

    using (var rounding = GpuDevice.Choose(kind, new GpuOptions { Precision = GpuPrecision.Bf16Activations }))
    {
        foreach (var shape in shapes.Where(_ => rounding.Device is not null))
        {
            Run("moe-block", () => DeviceBenchmarks.MoeBlock(rounding.Device!, random, shape, small ? DeviceBenchmarks.SmallBlockTokens : DeviceBenchmarks.BlockTokens, copy, gemm));
        }
    }

    foreach (var shape in shapes)
    {
        Run("decode", () =>
        {
            var layers = decodeLayers ?? shape.Layers;
            var upload = Stopwatch.StartNew();
            using var model = random.Model(gpu, shape, layers);
            var uploadSeconds = upload.Elapsed.TotalSeconds;
            var result = DeviceBenchmarks.Decode(model, shape.WeightBytesPerToken(layers), small ? 4 : 32, copy);
            result["shape"] = shape.Name;
            result["upload_s"] = uploadSeconds;
            return result;
        });
    }

    return 0;

    static Dictionary<string, object?>? Run(string name, Func<Dictionary<string, object?>> bench)
    {
        try
        {
            var result = bench();
            result["bench"] = name;
            Emit(result);
            return result;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Emit(new Dictionary<string, object?> { ["bench"] = name, ["error"] = $"{e.GetType().Name}: {e.Message.Split('\n')[0]}" });
            return null;
        }
    }
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
