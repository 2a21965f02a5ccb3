namespace Orleans.MoE.Tensors.Cpu;

/// <summary>How many cores the CPU kernels use. Defaults to all of them.</summary>
public static class CpuParallelism
{
    private static ParallelOptions s_options = new() { MaxDegreeOfParallelism = Environment.ProcessorCount };

    public static int Degree => s_options.MaxDegreeOfParallelism;

    internal static ParallelOptions Options => s_options;

    /// <summary>Sets the number of threads kernels may use (1 = single-threaded).</summary>
    public static void SetDegree(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threads);
        s_options = new ParallelOptions { MaxDegreeOfParallelism = threads };
    }
}
