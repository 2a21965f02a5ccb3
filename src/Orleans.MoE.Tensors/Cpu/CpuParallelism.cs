namespace Orleans.MoE.Tensors.Cpu;

/// <summary>How many cores the CPU kernels use (default: all of them), and the pool they run on.</summary>
public static class CpuParallelism
{
    private static KernelThreadPool s_pool = new(Environment.ProcessorCount);

    public static int Degree => s_pool.Threads;

    /// <summary>The kernels' worker threads.</summary>
    public static KernelThreadPool Pool => s_pool;

    /// <summary>Sets the number of threads kernels may use (1 = single-threaded).</summary>
    public static void SetDegree(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threads);
        var previous = Interlocked.Exchange(ref s_pool, new KernelThreadPool(threads));
        previous.Dispose();
    }
}
