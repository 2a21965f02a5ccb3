using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Orleans.MoE.Cli.Benchmarks;
using Orleans.MoE.Gpu;
using Orleans.MoE.Gpu.Benchmarks;
using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Cli.Commands;

/// <summary><c>moe bench ...</c>: benchmarks that print JSON and compare against a baseline measured in the same run.</summary>
internal static class BenchCommand
{
    private static readonly JsonSerializerOptions s_json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static Command Create()
    {
        var command = new Command("bench", "Benchmarks (JSON output with --json)");
        command.Subcommands.Add(Decode());
        command.Subcommands.Add(MoeBlock());
        command.Subcommands.Add(Runtime());
        command.Subcommands.Add(Cluster());
        command.Subcommands.Add(Api());
        return command;
    }

    private static Command Api()
    {
        var model = CommonOptions.Model();
        var url = new Option<string?>("--url") { Description = "A running front end (with --gateway for its mesh); default: start a silo and a front end in this process" };
        var apiKey = new Option<string?>("--api-key") { Description = "The API key to send to --url" };
        var concurrency = new Option<int>("--concurrency", "-c") { Description = "Requests in flight at once", DefaultValueFactory = _ => 4 };
        var requests = new Option<int>("--requests") { Description = "Requests per run", DefaultValueFactory = _ => 32 };
        var tokens = new Option<int>("--tokens", "-n") { Description = "Tokens per request", DefaultValueFactory = _ => 32 };
        var json = CommonOptions.Json();
        var cluster = new ClusterConnection();
        var command = new Command("api", "Requests/s, time to first token and inter-token latency through the OpenAI-compatible API, beside the same figures straight through an Orleans client")
        {
            model, url, apiKey, concurrency, requests, tokens, json,
        };
        foreach (var option in cluster.All)
        {
            command.Options.Add(option);
        }

        command.SetAction((result, cancellationToken) => ClusterConnection.RunAsync(async () =>
        {
            var (c, r, t) = (result.GetValue(concurrency), result.GetValue(requests), result.GetValue(tokens));
            if (c < 1 || r < c || t < 2)
            {
                throw new ArgumentException("--concurrency must be at least 1, --requests at least --concurrency, --tokens at least 2");
            }

            ApiBenchmarkTarget? target = null;
            if (result.GetValue(url) is { } address)
            {
                target = ClusterConnection.Given(result, cluster)
                    ? new ApiBenchmarkTarget(address, result.GetValue(apiKey), cluster.GatewayEndPoints(result), cluster.ClusterIdOf(result), result.GetValue(model))
                    : throw new ArgumentException("--url needs --gateway to measure the same mesh through an Orleans client");
            }

            var measured = await ApiBenchmark.RunAsync(target, target is null ? CommonOptions.ResolveModel(result.GetValue(model)) : "", c, r, t, cancellationToken);
            if (result.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(measured, s_json));
                return 0;
            }

            foreach (var (label, f) in new[] { ("API", measured.Api), ("runtime client", measured.Direct) })
            {
                Console.WriteLine($"{label}: {f.RequestsPerSecond:F1} requests/s, {f.TokensPerSecond:F0} tok/s, first token p50 {f.TimeToFirstTokenMsP50:F1} ms p99 {f.TimeToFirstTokenMsP99:F1} ms, inter-token p50 {f.InterTokenMsP50:F2} ms p99 {f.InterTokenMsP99:F2} ms");
            }

            Console.WriteLine($"API/direct first-token p50: {measured.TimeToFirstTokenP50Ratio:F2} (target ≤ {measured.TargetRatio:F2})");
            return 0;
        }));
        return command;
    }

    private static Command Cluster()
    {
        var model = CommonOptions.Model();
        var silos = new Option<int>("--silos") { Description = "Silos in this process (real TCP on loopback)", DefaultValueFactory = _ => 3 };
        var concurrency = new Option<int>("--concurrency", "-c") { Description = "Sequences generated at once", DefaultValueFactory = _ => 8 };
        var tokens = new Option<int>("--tokens", "-n") { Description = "Tokens per sequence", DefaultValueFactory = _ => 64 };
        var prompt = new Option<int>("--prompt-tokens") { Description = "Prompt length", DefaultValueFactory = _ => 16 };
        var threads = new Option<int?>("--threads") { Description = "CPU threads for the kernels of both runs (default: all cores)" };
        var oneGateway = new Option<bool>("--one-gateway") { Description = "Run every sequence on the first silo's scheduler (default: spread over the silos)" };
        var json = CommonOptions.Json();
        var command = new Command("cluster", "Throughput, time to first token, inter-token latency and per-layer dispatch overhead of the mesh, beside the single-process figures from the same run")
        {
            model, silos, concurrency, tokens, prompt, threads, oneGateway, json,
        };
        command.SetAction((result, cancellationToken) => CommonOptions.RunAsync(async () =>
        {
            var (n, c, t) = (result.GetValue(silos), result.GetValue(concurrency), result.GetValue(tokens));
            if (result.GetValue(threads) is { } kernelThreads)
            {
                CpuParallelism.SetDegree(kernelThreads);
            }

            if (n < 1 || c < 1 || t < 2 || result.GetValue(prompt) < 1)
            {
                throw new ArgumentException("--silos, --concurrency and --prompt-tokens must be at least 1, --tokens at least 2");
            }

            var measured = await ClusterBenchmark.RunAsync(CommonOptions.ResolveModel(result.GetValue(model)), n, c, result.GetValue(prompt), t, result.GetValue(oneGateway), cancellationToken);
            if (result.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(measured, s_json));
                return 0;
            }

            foreach (var (label, figures) in new[] { ($"mesh ({measured.Silos} silos)", measured.Mesh), ("single process", measured.SingleProcess) })
            {
                Console.WriteLine($"{label}: {figures.TokensPerSecond:F0} tok/s, first token p50 {figures.TimeToFirstTokenMsP50:F1} ms, inter-token p50 {figures.InterTokenMsP50:F2} ms p99 {figures.InterTokenMsP99:F2} ms");
            }

            Console.WriteLine($"mesh/single throughput: {measured.ThroughputRatio:F2}; dispatch overhead per layer: p50 {measured.DispatchOverheadUsP50:F0} µs, p99 {measured.DispatchOverheadUsP99:F0} µs ({measured.DispatchSamples} samples)");
            return 0;
        }));
        return command;
    }

    private static Command Runtime()
    {
        var calls = new Option<int>("--calls") { Description = "Sequential calls sampled for latency", DefaultValueFactory = _ => 3000 };
        var seconds = new Option<double>("--seconds") { Description = "Seconds of concurrent calls for throughput", DefaultValueFactory = _ => 2 };
        var json = CommonOptions.Json();
        var command = new Command("runtime", "Grain calls/s and latency (same-silo, cross-silo), the data channel's, tensor payload throughput through both, against a raw TCP echo on loopback")
        {
            calls, seconds, json,
        };
        command.SetAction((result, cancellationToken) => CommonOptions.RunAsync(async () =>
        {
            var measured = await RuntimeBenchmark.RunAsync(new RuntimeBenchmarkOptions(result.GetValue(calls), ThroughputSeconds: result.GetValue(seconds)), cancellationToken);
            if (result.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(measured, s_json));
                return 0;
            }

            Console.WriteLine($"same-silo:  {measured.SameSilo.CallsPerSecond:F0} calls/s, p50 {measured.SameSilo.P50Microseconds:F0} µs, p99 {measured.SameSilo.P99Microseconds:F0} µs");
            Console.WriteLine($"cross-silo: {measured.CrossSilo.CallsPerSecond:F0} calls/s, p50 {measured.CrossSilo.P50Microseconds:F0} µs, p99 {measured.CrossSilo.P99Microseconds:F0} µs ({measured.CrossSiloP50OverRaw:F2}x the raw round trip)");
            Console.WriteLine($"data channel: {measured.DataChannel.CallsPerSecond:F0} batches/s, p50 {measured.DataChannel.P50Microseconds:F0} µs, p99 {measured.DataChannel.P99Microseconds:F0} µs ({measured.DataChannelP50OverRaw:F2}x the raw round trip)");
            Console.WriteLine($"raw TCP echo: p50 {measured.RawTcpEcho.P50Microseconds:F0} µs");
            foreach (var payload in measured.Payloads)
            {
                Console.WriteLine($"payload {payload.Bytes >> 20} MiB: {payload.GrainMegabytesPerSecond:F0} MB/s through a grain call ({payload.FractionOfRaw:P0} of raw), "
                    + $"{payload.DataChannelMegabytesPerSecond:F0} MB/s through the data channel ({payload.DataChannelFractionOfRaw:P0}), {payload.RawSocketMegabytesPerSecond:F0} MB/s raw");
            }

            return 0;
        }));
        return command;
    }

    private static Command MoeBlock()
    {
        var device = CommonOptions.Device("cuda", "the block");
        var shape = new Option<string>("--shape")
        {
            Description = "mixtral-8x7b (hidden 4096, FFN 14336, 8 experts, top-2) or qwen3-30b-a3b (hidden 2048, FFN 768, 128 experts, top-8); random bf16 weights",
            DefaultValueFactory = _ => ModelShape.Mixtral8x7B.Name,
        };
        shape.AcceptOnlyFromAmong([.. ModelShape.Real.Select(s => s.Name)]);
        var small = new Option<bool>("--small")
        {
            Description = "Scaled-down shapes (hidden 64, at most 16 experts, T = 1 and 16) and small copy and GEMM measurements, so ILGPU's CPU accelerator finishes in seconds; always on with --device ilgpu-cpu",
        };
        var precision = CommonOptions.Precision();
        var json = CommonOptions.Json();
        var command = new Command("moe-block", "One MoE layer on a device at T = 1, 16, 256, 4096 tokens, against the device's copy bandwidth (T = 1) and a large bf16 GEMM (T = 4096) measured in the same run")
        {
            device, shape, small, precision, json,
        };
        command.SetAction((result, _) => CommonOptions.RunAsync(() =>
        {
            using var choice = GpuDevice.Choose(DeviceKinds.Parse(result.GetValue(device)), new GpuOptions { Precision = GpuPrecisions.Parse(result.GetValue(precision)) });
            var gpu = choice.Device ?? throw new InvalidOperationException($"moe bench moe-block needs a device, and there is none: {choice.Reason}");
            var scaled = result.GetValue(small) || gpu.Kind == DeviceKind.IlgpuCpu;
            var block = ModelShape.Named(result.GetValue(shape)!);
            block = scaled ? block.Small() : block;
            using var random = new RandomModels(scaled ? 1L << 20 : 1L << 29);
            var copy = DeviceBenchmarks.CopyBandwidth(gpu, scaled ? 1L << 22 : 1L << 28);
            var gemm = DeviceBenchmarks.Gemm(gpu, random, scaled ? 64 : 8192);
            var measured = DeviceBenchmarks.MoeBlock(gpu, random, block, scaled ? DeviceBenchmarks.SmallBlockTokens : DeviceBenchmarks.BlockTokens, copy, gemm);
            if (result.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
                {
                    ["bench"] = "moe-block", ["device"] = choice.Reason, ["small"] = scaled, ["copy"] = copy, ["gemm"] = gemm, ["block"] = measured,
                }, s_json));
                return Task.FromResult(0);
            }

            var tokens = scaled ? DeviceBenchmarks.SmallBlockTokens : DeviceBenchmarks.BlockTokens;
            Console.WriteLine($"device {choice.Reason}");
            Console.WriteLine($"copy {copy["tb_per_s"]:G4} TB/s (read + write), bf16 GEMM {gemm["m"]}³ {gemm["tflop_per_s"]:G4} TFLOP/s ({gemm["kernel"]})");
            Console.WriteLine($"MoE block {block.Name} (hidden {block.Hidden}, FFN {block.Intermediate}, {block.Experts} experts, top-{block.TopK}, {measured["precision"]}): "
                + string.Join(", ", tokens.Select(t => $"T={t} {measured[$"t{t}_ms"]:G4} ms")));
            Console.WriteLine($"T={tokens[0]}: {measured[$"t{tokens[0]}_fraction_of_bandwidth_roofline"]:P1} of the bandwidth roofline; T={tokens[^1]}: {measured[$"t{tokens[^1]}_fraction_of_gemm_peak"]:P1} of the GEMM peak");
            return Task.FromResult(0);
        }));
        return command;
    }

    private static Command Decode()
    {
        var model = CommonOptions.Model();
        var tokens = new Option<int>("--tokens", "-n") { Description = "Tokens to decode", DefaultValueFactory = _ => 128 };
        var prompt = new Option<int>("--prompt-tokens") { Description = "Prompt length for prefill (CPU engine; the device run prefills 16)", DefaultValueFactory = _ => 64 };
        var threads = new Option<int?>("--threads") { Description = "CPU threads (default: all cores)" };
        var repetitions = new Option<int>("--repetitions") { Description = "Runs; the best is reported (CPU engine)", DefaultValueFactory = _ => 3 };
        var device = CommonOptions.Device("cpu", "the model");
        var random = new Option<string?>("--random")
        {
            Description = "Instead of --model, a model of this real size with random bf16 weights made in memory (no checkpoint): mixtral-8x7b (32 layers, 87 GiB) or qwen3-30b-a3b "
                + "(48 layers, 56 GiB), Mixtral-style attention; needs a device (scaled down on ilgpu-cpu)",
        };
        random.AcceptOnlyFromAmong([.. ModelShape.Real.Select(s => s.Name)]);
        var layers = new Option<int?>("--layers") { Description = "Decoder layers of the --random model (default: the real count)" };
        var precision = CommonOptions.Precision();
        var json = CommonOptions.Json();
        var command = new Command("decode", "Prefill and decode tokens/s on the CPU, against the machine's memory-bandwidth roofline (decode) and measured f32 FMA peak (prefill); with --device on a GPU, against its copy bandwidth")
        {
            model, tokens, prompt, threads, repetitions, device, random, layers, precision, json,
        };
        command.SetAction((result, _) => CommonOptions.RunAsync(() =>
        {
            if (result.GetValue(threads) is { } t)
            {
                CpuParallelism.SetDegree(t);
            }

            var kind = DeviceKinds.Parse(result.GetValue(device));
            if (kind is not DeviceKind.Cpu || result.GetValue(random) is not null || result.GetValue(layers) is not null)
            {
                using var choice = GpuDevice.Choose(kind, new GpuOptions { Precision = GpuPrecisions.Parse(result.GetValue(precision)) });
                if (choice.Device is { } gpu)
                {
                    return Task.FromResult(DecodeOnDevice(choice.Reason, gpu, result.GetValue(model), result.GetValue(random), result.GetValue(layers), result.GetValue(tokens), result.GetValue(json)));
                }

                if (result.GetValue(random) is not null || result.GetValue(layers) is not null)
                {
                    throw new InvalidOperationException($"--random and --layers need a device (--device cuda or ilgpu-cpu), and there is none: {choice.Reason}");
                }

                Console.Error.WriteLine($"device {choice.Reason}");
            }

            var directory = CommonOptions.ResolveModel(result.GetValue(model));
            using var loaded = CommonOptions.LoadModel(directory);
            var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory)));
            var measured = DecodeBenchmark.Run(loaded, name, result.GetValue(prompt), result.GetValue(tokens), result.GetValue(repetitions));
            Console.WriteLine(result.GetValue(json)
                ? JsonSerializer.Serialize(measured, s_json)
                : $"{name}: prefill {measured.PrefillTokensPerSecond:F0} tok/s ({measured.PrefillGFlopsPerSecond:F1} GFLOP/s, {measured.PrefillPeakFraction:P0} of the measured f32 FMA peak {measured.F32FmaPeakGFlopsPerSecond:F1} GFLOP/s; " +
                  $"bf16 dot-product peak: none measured, .NET has no AVX-512 BF16 intrinsic{(measured.CpuHasAvx512BFloat16 ? " though this CPU has the instruction" : " and this CPU lacks the instruction")}), " +
                  $"decode {measured.DecodeTokensPerSecond:F0} tok/s " +
                  $"({measured.DecodeMillisecondsPerToken:F2} ms/token), {measured.RooflineFraction:P0} of the {measured.RooflineTokensPerSecond:F0} tok/s roofline " +
                  $"({measured.WeightBytesPerToken / 1e6:F2} MB/token at {measured.MemoryBandwidthGBPerSecond:F1} GB/s)");
            return Task.FromResult(0);
        }));
        return command;
    }

    /// <summary>
    /// Greedy decode of a whole model on a device (the checkpoint of --model, or a --random one made in memory),
    /// with the device's copy bandwidth measured in the same run.
    /// </summary>
    private static int DecodeOnDevice(string deviceLine, GpuDevice gpu, string? modelOption, string? randomShape, int? layerCount, int steps, bool json)
    {
        var small = gpu.Kind == DeviceKind.IlgpuCpu;
        var copy = DeviceBenchmarks.CopyBandwidth(gpu, small ? 1L << 22 : 1L << 28);
        var upload = Stopwatch.StartNew();
        Dictionary<string, object?> decoded;
        string name;
        if (randomShape is not null)
        {
            var shape = ModelShape.Named(randomShape);
            shape = small ? shape.Small() : shape;
            var layers = layerCount ?? shape.Layers;
            if (layers < 1)
            {
                throw new ArgumentException("--layers must be at least 1");
            }

            using var random = new RandomModels(small ? 1L << 20 : 1L << 29);
            using var model = random.Model(gpu, shape, layers);
            var uploadSeconds = upload.Elapsed.TotalSeconds;
            decoded = DeviceBenchmarks.Decode(model, shape.WeightBytesPerToken(layers), steps, copy);
            decoded["upload_s"] = uploadSeconds;
            name = $"random {shape.Name}";
        }
        else
        {
            if (layerCount is not null)
            {
                throw new ArgumentException("--layers applies to a --random model");
            }

            var directory = CommonOptions.ResolveModel(modelOption);
            using var cpu = CommonOptions.LoadModel(directory);
            using var model = GpuModel.Upload(gpu, cpu);
            var uploadSeconds = upload.Elapsed.TotalSeconds;
            decoded = DeviceBenchmarks.Decode(model, cpu.WeightBytesPerToken(), steps, copy);
            decoded["upload_s"] = uploadSeconds;
            name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory)));
        }

        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?> { ["bench"] = "decode", ["device"] = deviceLine, ["model"] = name, ["copy"] = copy, ["decode"] = decoded }, s_json));
        }
        else
        {
            Console.WriteLine($"device {deviceLine}");
            Console.WriteLine($"{name} ({decoded["layers"]} layers, {decoded["weights_gib"]:G4} GiB on the device): decode {decoded["decode_tokens_per_s"]:G4} tok/s ({decoded["decode_ms_per_token"]:G4} ms/token), "
                + $"{decoded["decode_tb_per_s"]:G4} TB/s of weights, {decoded["fraction_of_bandwidth_roofline"]:P1} of the copy bandwidth {copy["tb_per_s"]:G4} TB/s; prefill of 16 tokens {decoded["prefill_16_ms"]:G4} ms");
        }

        return 0;
    }
}
