using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Cli.Benchmarks;

/// <summary>
/// The machine's measured f32 fused multiply-add peak on the kernels' threads: every thread runs
/// independent chains of the widest vector FMA the JIT emits (enough chains to cover its latency),
/// nothing read from memory.
/// </summary>
internal static class ComputePeak
{
    /// <summary>Iterations of 12 vector FMAs per thread per pass.</summary>
    private const int Iterations = 1 << 22;

    /// <summary>Best of <paramref name="repetitions"/> passes, in f32 FLOP/s (a multiply-add counts two).</summary>
    public static double MeasureSingle(int repetitions = 5)
    {
        var threads = CpuParallelism.Degree;
        var sink = new float[threads];
        var best = double.MaxValue;
        for (var r = 0; r < repetitions; r++)
        {
            var watch = Stopwatch.StartNew();
            CpuParallelism.Pool.For(threads, i => sink[i] = Chains(Iterations, 1f + (i * 1e-7f)));
            best = Math.Min(best, watch.Elapsed.TotalSeconds);
        }

        GC.KeepAlive(sink);
        var lanes = Vector512.IsHardwareAccelerated ? Vector512<float>.Count : Vector256<float>.Count;
        return 2.0 * 12 * lanes * Iterations * threads / best;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains(int iterations, float seed) =>
        Vector512.IsHardwareAccelerated ? Chains512(iterations, seed) : Chains256(iterations, seed);

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains256(int iterations, float seed)
    {
        var m = Vector256.Create(0.999999f);
        var c = Vector256.Create(seed * 1e-7f);
        Vector256<float> a0 = Vector256.Create(seed), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        for (var i = 0; i < iterations; i++)
        {
            a0 = Vector256.FusedMultiplyAdd(a0, m, c);
            a1 = Vector256.FusedMultiplyAdd(a1, m, c);
            a2 = Vector256.FusedMultiplyAdd(a2, m, c);
            a3 = Vector256.FusedMultiplyAdd(a3, m, c);
            a4 = Vector256.FusedMultiplyAdd(a4, m, c);
            a5 = Vector256.FusedMultiplyAdd(a5, m, c);
            a6 = Vector256.FusedMultiplyAdd(a6, m, c);
            a7 = Vector256.FusedMultiplyAdd(a7, m, c);
            a8 = Vector256.FusedMultiplyAdd(a8, m, c);
            a9 = Vector256.FusedMultiplyAdd(a9, m, c);
            a10 = Vector256.FusedMultiplyAdd(a10, m, c);
            a11 = Vector256.FusedMultiplyAdd(a11, m, c);
        }

        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains512(int iterations, float seed)
    {
        var m = Vector512.Create(0.999999f);
        var c = Vector512.Create(seed * 1e-7f);
        Vector512<float> a0 = Vector512.Create(seed), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        for (var i = 0; i < iterations; i++)
        {
            a0 = Vector512.FusedMultiplyAdd(a0, m, c);
            a1 = Vector512.FusedMultiplyAdd(a1, m, c);
            a2 = Vector512.FusedMultiplyAdd(a2, m, c);
            a3 = Vector512.FusedMultiplyAdd(a3, m, c);
            a4 = Vector512.FusedMultiplyAdd(a4, m, c);
            a5 = Vector512.FusedMultiplyAdd(a5, m, c);
            a6 = Vector512.FusedMultiplyAdd(a6, m, c);
            a7 = Vector512.FusedMultiplyAdd(a7, m, c);
            a8 = Vector512.FusedMultiplyAdd(a8, m, c);
            a9 = Vector512.FusedMultiplyAdd(a9, m, c);
            a10 = Vector512.FusedMultiplyAdd(a10, m, c);
            a11 = Vector512.FusedMultiplyAdd(a11, m, c);
        }

        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }
}
