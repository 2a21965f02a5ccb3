using System.Diagnostics;
using Orleans.MoE.Models;
using Orleans.MoE.Models.Generation;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Cli.Benchmarks;

/// <summary>Result of <c>moe bench decode</c>.</summary>
internal sealed record DecodeBenchmarkResult(
    string Model,
    int Threads,
    int PrefillTokens,
    double PrefillTokensPerSecond,
    double PrefillGFlopsPerSecond,
    double F32FmaPeakGFlopsPerSecond,
    double PrefillPeakFraction,
    bool CpuHasAvx512BFloat16,
    double? BFloat16DotPeakGFlopsPerSecond,
    int DecodeTokens,
    double DecodeTokensPerSecond,
    double DecodeMillisecondsPerToken,
    long WeightBytesPerToken,
    double MemoryBandwidthGBPerSecond,
    double RooflineTokensPerSecond,
    double RooflineFraction);

/// <summary>
/// Prefill and decode throughput of the CPU engine, with the machine's memory bandwidth and f32 FMA peak
/// measured in the same run: decode's roofline is bandwidth / bytes of weights one token reads
/// (attention, routers, the selected experts, LM head); prefill's FLOP/s counts the multiply-adds of
/// the matrix products with weights (two FLOPs each; attention scores left out), against the peak.
/// No bf16 dot-product peak is measured: .NET exposes no AVX-512 BF16 intrinsic, so the kernels widen
/// bf16 to f32 and the f32 peak is theirs; whether the CPU has the instruction is reported.
/// </summary>
internal static class DecodeBenchmark
{
    public static DecodeBenchmarkResult Run(CausalLanguageModel model, string name, int promptTokens, int decodeTokens, int repetitions)
    {
        var prompt = Enumerable.Range(0, promptTokens).Select(i => 3 + (i * 7919 % (model.VocabSize - 3))).ToArray();

        // Warm up: page cache, and long enough for the JIT's tiered compilation to reach optimised code.
        var warmup = Stopwatch.StartNew();
        while (warmup.Elapsed < TimeSpan.FromSeconds(1))
        {
            GreedyDecoder.Generate(model, prompt, 16);
        }

        var prefill = double.MaxValue;
        var decode = double.MaxValue;
        for (var r = 0; r < repetitions; r++)
        {
            var cache = model.CreateCache(promptTokens + decodeTokens);
            var watch = Stopwatch.StartNew();
            var logits = model.Forward(prompt, cache);
            prefill = Math.Min(prefill, watch.Elapsed.TotalSeconds);

            var sampler = new Sampler(SamplingOptions.Greedy);
            watch.Restart();
            for (var i = 0; i < decodeTokens; i++)
            {
                logits = model.Forward([sampler.Next(logits)], cache);
            }

            decode = Math.Min(decode, watch.Elapsed.TotalSeconds);
        }

        var bandwidth = MemoryBandwidth.Measure();
        var peak = ComputePeak.MeasureSingle();
        var bytesPerToken = model.WeightBytesPerToken();
        var decodeRate = decodeTokens / decode;
        var roofline = bandwidth / bytesPerToken;
        var prefillFlops = 2.0 * ((promptTokens * (double)(model.WeightElementsPerToken() - ((long)model.LmHead.Rows * model.LmHead.Cols))) + (model.LmHead.Rows * (double)model.LmHead.Cols)) / prefill;
        return new DecodeBenchmarkResult(
            name, CpuParallelism.Degree, promptTokens, promptTokens / prefill, prefillFlops / 1e9, peak / 1e9, prefillFlops / peak,
            CpuHasAvx512BFloat16(), null, decodeTokens, decodeRate, 1000 * decode / decodeTokens,
            bytesPerToken, bandwidth / 1e9, roofline, decodeRate / roofline);
    }

    /// <summary>Whether /proc/cpuinfo lists avx512_bf16 (false where there is no such file).</summary>
    private static bool CpuHasAvx512BFloat16() =>
        File.Exists("/proc/cpuinfo") && File.ReadLines("/proc/cpuinfo").Any(l => l.StartsWith("flags", StringComparison.Ordinal) && l.Contains(" avx512_bf16", StringComparison.Ordinal));
}
