using Microsoft.Extensions.Options;
using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Models.Layers;
using System.Net;
using Orleans.MoE.Grains.Cluster;
using Orleans.MoE.Tensors;

namespace Orleans.MoE.Grains.Tests;

/// <summary>An expert's weights stay while any computation uses them, and its budget is charged and returned.</summary>
public sealed class ExpertHostingTests
{
    private sealed class Publisher : ISiloMetadataPublisher
    {
        public IReadOnlyDictionary<string, string> Current { get; private set; } = new Dictionary<string, string>();

        public SiloAddress Local { get; } = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 11111), 1);

        public Task PublishAsync(IReadOnlyDictionary<string, string?> changes, CancellationToken cancellationToken = default)
        {
            var next = new Dictionary<string, string>(Current);
            foreach (var (key, value) in changes)
            {
                if (value is null)
                {
                    next.Remove(key);
                }
                else
                {
                    next[key] = value;
                }
            }

            Current = next;
            return Task.CompletedTask;
        }
    }

    private sealed class Owner : IDisposable
    {
        public bool Disposed { get; private set; }

        public void Dispose() => Disposed = true;
    }

    private static SwiGluMlp Expert()
    {
        Linear L() => new(WeightMatrix.FromArray(new float[4], 2, 2));
        return new SwiGluMlp(L(), L(), L());
    }

    private static LocalExperts Local(long budget)
    {
        var options = Options.Create(new MeshOptions { ExpertMemoryBytes = budget });
        return new LocalExperts(options, new Publisher(), new ExpertLoadMeter(options, TimeProvider.System));
    }

    [Fact]
    public void Weights_are_released_after_the_last_computation_using_them()
    {
        var local = Local(1000);
        var key = new ExpertKey("m", 0, 1);
        var owner = new Owner();
        local.Reserve(key, 100);
        local.Add(key, new HostedExpert(Expert(), 100, owner));

        var computing = local.Acquire(key);
        Assert.NotNull(computing);
        local.Remove(key); // the activation goes while a computation still runs

        Assert.False(owner.Disposed);
        Assert.Null(local.Acquire(key));
        Assert.Equal(0, local.Reserved);
        computing.Release();
        Assert.True(owner.Disposed);
        Assert.False(computing.TryAcquire());
    }

    [Fact]
    public void The_budget_refuses_an_expert_that_does_not_fit_and_says_so()
    {
        var local = Local(250);
        local.Reserve(new ExpertKey("m", 0, 0), 100);
        local.Reserve(new ExpertKey("m", 0, 1), 100);

        var refused = Assert.Throws<ExpertCapacityException>(() => local.Reserve(new ExpertKey("m", 0, 2), 100));
        Assert.Contains("m/0/2/0 needs 100 bytes", refused.Message);
        Assert.Contains("50 of its 250-byte", refused.Message);
        local.Unreserve(100);
        local.Reserve(new ExpertKey("m", 0, 2), 100);
        Assert.Equal(50, local.Free);
    }
}
