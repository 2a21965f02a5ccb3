using System.Diagnostics;

namespace Orleans.MoE.Tensors.Cpu;

/// <summary>
/// Worker threads for CPU kernels that stay hot between the many small parallel loops of a decode
/// step: after a loop they spin briefly for the next one before sleeping (as ggml's thread pool does),
/// because waking a sleeping thread-pool thread costs more than a small matrix product.
/// The caller takes part in every loop. A loop started while another runs (a nested loop, or
/// another sequence on another thread) runs on its caller alone, so callers never wait on each other.
/// </summary>
public sealed class KernelThreadPool : IDisposable
{
    /// <summary>How long an idle worker spins for the next loop before sleeping.</summary>
    private static readonly long s_spinTicks = Stopwatch.Frequency / 20000; // 50 µs

    [ThreadStatic]
    private static bool t_isWorker;

    private readonly Thread[] _workers;
    private readonly object _sleep = new();
    private Job? _job;
    private int _busy;
    private bool _disposed;

    public KernelThreadPool(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threads);
        Threads = threads;
        _workers = new Thread[threads - 1];
        for (var i = 0; i < _workers.Length; i++)
        {
            _workers[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"moe-kernel-{i + 1}" };
            _workers[i].Start();
        }
    }

    /// <summary>Threads that run a loop, the caller included.</summary>
    public int Threads { get; }

    /// <summary>Runs body(0..count-1) across the workers and the caller; returns when all are done.</summary>
    public void For(int count, Action<int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (count <= 0)
        {
            return;
        }

        if (count == 1 || _workers.Length == 0 || t_isWorker || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            for (var i = 0; i < count; i++)
            {
                body(i);
            }

            return;
        }

        var job = new Job(body, count);
        try
        {
            Volatile.Write(ref _job, job);
            lock (_sleep)
            {
                Monitor.PulseAll(_sleep);
            }

            job.Run();
            var spin = new SpinWait();
            while (Volatile.Read(ref job.Remaining) > 0)
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }

        if (job.Error is { } error)
        {
            throw new AggregateException(error);
        }
    }

    public void Dispose()
    {
        lock (_sleep)
        {
            _disposed = true;
            Monitor.PulseAll(_sleep);
        }
    }

    private void WorkerLoop()
    {
        t_isWorker = true;
        Job? last = null;
        while (true)
        {
            var job = WaitForJob(last);
            if (job is null)
            {
                return;
            }

            job.Run();
            last = job;
        }
    }

    private Job? WaitForJob(Job? last)
    {
        var deadline = Stopwatch.GetTimestamp() + s_spinTicks;
        while (Stopwatch.GetTimestamp() < deadline)
        {
            var job = Volatile.Read(ref _job);
            if (job != last && job is not null)
            {
                return job;
            }

            Thread.SpinWait(20);
        }

        lock (_sleep)
        {
            while (true)
            {
                if (_disposed)
                {
                    return null;
                }

                var job = Volatile.Read(ref _job);
                if (job != last && job is not null)
                {
                    return job;
                }

                Monitor.Wait(_sleep);
            }
        }
    }

    private sealed class Job
    {
        public int Remaining;
        private readonly Action<int> _body;
        private readonly int _count;
        private int _next = -1;

        public Job(Action<int> body, int count)
        {
            _body = body;
            _count = count;
            Remaining = count;
        }

        public Exception? Error { get; private set; }

        public void Run()
        {
            int i;
            while ((i = Interlocked.Increment(ref _next)) < _count)
            {
                try
                {
                    _body(i);
                }
                catch (Exception e)
                {
                    Error ??= e;
                }
                finally
                {
                    Interlocked.Decrement(ref Remaining);
                }
            }
        }
    }
}
