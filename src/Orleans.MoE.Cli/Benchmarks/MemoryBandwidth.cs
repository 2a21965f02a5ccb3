using System.Diagnostics;
using System.Numerics.Tensors;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Cli.Benchmarks;

/// <summary>The machine's streaming read bandwidth: a parallel sum over a buffer far larger than the caches.</summary>
internal static class MemoryBandwidth
{
    /// <summary>Best of <paramref name="repetitions"/> passes over <paramref name="bytes"/> bytes, in bytes per second.</summary>
    public static double Measure(long bytes = 1L << 30, int repetitions = 5)
    {
        var threads = CpuParallelism.Degree;
        var perThread = (int)(bytes / sizeof(float) / threads);
        var chunks = Enumerable.Range(0, threads).Select(_ =>
        {
            var chunk = GC.AllocateUninitializedArray<float>(perThread);
            chunk.AsSpan().Fill(1f);
            return chunk;
        }).ToArray();

        var best = double.MaxValue;
        for (var r = 0; r < repetitions; r++)
        {
            var sums = new float[threads];
            var watch = Stopwatch.StartNew();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, i => sums[i] = TensorPrimitives.Sum(chunks[i]));
            best = Math.Min(best, watch.Elapsed.TotalSeconds);
            GC.KeepAlive(sums);
        }

        return (double)perThread * sizeof(float) * threads / best;
    }
}
