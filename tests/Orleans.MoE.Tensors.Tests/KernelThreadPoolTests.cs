using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Tensors.Tests;

public sealed class KernelThreadPoolTests : IDisposable
{
    private readonly KernelThreadPool _pool = new(3);

    public void Dispose() => _pool.Dispose();

    [Fact]
    public void Every_index_runs_exactly_once()
    {
        for (var round = 0; round < 200; round++)
        {
            var hits = new int[37];
            _pool.For(hits.Length, i => Interlocked.Increment(ref hits[i]));
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    }

    [Fact]
    public void Work_is_shared_with_the_workers()
    {
        var threads = new HashSet<int>();
        for (var round = 0; round < 50 && threads.Count < 2; round++)
        {
            _pool.For(64, _ =>
            {
                Thread.SpinWait(2000);
                lock (threads)
                {
                    threads.Add(Environment.CurrentManagedThreadId);
                }
            });
        }

        Assert.True(threads.Count >= 2, "no loop ever ran on a worker thread");
    }

    [Fact]
    public void An_exception_reaches_the_caller_after_the_loop()
    {
        var ran = 0;
        var error = Assert.Throws<AggregateException>(() => _pool.For(20, i =>
        {
            Interlocked.Increment(ref ran);
            if (i == 7)
            {
                throw new InvalidOperationException("boom");
            }
        }));
        Assert.IsType<InvalidOperationException>(error.InnerException);
        Assert.Equal(20, ran);
    }

    [Fact]
    public void Nested_and_concurrent_loops_complete()
    {
        var total = 0;
        Parallel.For(0, 4, _ => _pool.For(8, _ => _pool.For(5, _ => Interlocked.Increment(ref total))));
        Assert.Equal(4 * 8 * 5, total);
    }

    [Fact]
    public void A_single_thread_pool_runs_on_the_caller()
    {
        using var pool = new KernelThreadPool(1);
        var caller = Environment.CurrentManagedThreadId;
        pool.For(10, _ => Assert.Equal(caller, Environment.CurrentManagedThreadId));
    }
}
