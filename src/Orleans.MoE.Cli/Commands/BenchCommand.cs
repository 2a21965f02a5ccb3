using System.CommandLine;
using System.Text.Json;
using Orleans.MoE.Cli.Benchmarks;
using Orleans.MoE.Runtime.Benchmarks;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Cli.Commands;

/// <summary><c>moe bench ...</c>: benchmarks that print JSON and compare against a baseline measured in the same run.</summary>
internal static class BenchCommand
{
    private static readonly JsonSerializerOptions s_json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true };

    public static Command Create()
    {
        var command = new Command("bench", "Benchmarks (JSON output with --json)");
        command.Subcommands.Add(Decode());
        command.Subcommands.Add(Runtime());
        return command;
    }

    private static Command Runtime()
    {
        var calls = new Option<int>("--calls") { Description = "Sequential calls sampled for latency", DefaultValueFactory = _ => 3000 };
        var seconds = new Option<double>("--seconds") { Description = "Seconds of concurrent calls for throughput", DefaultValueFactory = _ => 2 };
        var json = CommonOptions.Json();
        var command = new Command("runtime", "Grain calls/s and latency (same-silo, cross-silo), tensor payload throughput, against a raw TCP echo on loopback")
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
            Console.WriteLine($"raw TCP echo: p50 {measured.RawTcpEcho.P50Microseconds:F0} µs");
            foreach (var payload in measured.Payloads)
            {
                Console.WriteLine($"payload {payload.Bytes >> 20} MiB: {payload.GrainMegabytesPerSecond:F0} MB/s through a grain call, {payload.RawSocketMegabytesPerSecond:F0} MB/s raw ({payload.FractionOfRaw:P0})");
            }

            return 0;
        }));
        return command;
    }

    private static Command Decode()
    {
        var model = CommonOptions.Model();
        var tokens = new Option<int>("--tokens", "-n") { Description = "Tokens to decode", DefaultValueFactory = _ => 128 };
        var prompt = new Option<int>("--prompt-tokens") { Description = "Prompt length for prefill", DefaultValueFactory = _ => 64 };
        var threads = new Option<int?>("--threads") { Description = "CPU threads (default: all cores)" };
        var repetitions = new Option<int>("--repetitions") { Description = "Runs; the best is reported", DefaultValueFactory = _ => 3 };
        var json = CommonOptions.Json();
        var command = new Command("decode", "Prefill and decode tokens/s on the CPU, against the machine's memory-bandwidth roofline")
        {
            model, tokens, prompt, threads, repetitions, json,
        };
        command.SetAction((result, _) => CommonOptions.RunAsync(() =>
        {
            if (result.GetValue(threads) is { } t)
            {
                CpuParallelism.SetDegree(t);
            }

            var directory = CommonOptions.ResolveModel(result.GetValue(model));
            using var loaded = CommonOptions.LoadModel(directory);
            var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory)));
            var measured = DecodeBenchmark.Run(loaded, name, result.GetValue(prompt), result.GetValue(tokens), result.GetValue(repetitions));
            Console.WriteLine(result.GetValue(json)
                ? JsonSerializer.Serialize(measured, s_json)
                : $"{name}: prefill {measured.PrefillTokensPerSecond:F0} tok/s, decode {measured.DecodeTokensPerSecond:F0} tok/s " +
                  $"({measured.DecodeMillisecondsPerToken:F2} ms/token), {measured.RooflineFraction:P0} of the {measured.RooflineTokensPerSecond:F0} tok/s roofline " +
                  $"({measured.WeightBytesPerToken / 1e6:F2} MB/token at {measured.MemoryBandwidthGBPerSecond:F1} GB/s)");
            return Task.FromResult(0);
        }));
        return command;
    }
}
