using Orleans.MoE.Runtime.Serialization;
using Orleans.MoE.Runtime.Testing;
using Orleans.MoE.Runtime.Tests.Grains;

namespace Orleans.MoE.Runtime.Tests;

/// <summary>Tensor payloads: large ones are attached to messages by reference, read into pooled buffers, shared on one silo.</summary>
public sealed class TensorPayloadTests : IAsyncLifetime
{
    private TestCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await TestCluster.StartAsync(3);

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    private static float[] Values(int count, int seed) => Enumerable.Range(0, count).Select(i => (float)((i * 31 + seed) % 1000)).ToArray();

    private static long ByteSum(ReadOnlySpan<byte> bytes)
    {
        long sum = 0;
        foreach (var b in bytes)
        {
            sum += b;
        }

        return sum;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4095)]
    [InlineData(4096)]
    [InlineData(262_147)]
    [InlineData(1 << 20)]
    [InlineData(3 * (1 << 20) + 5)]
    public async Task Payloads_of_any_size_cross_silos_intact_both_ways(int floats)
    {
        var values = Values(floats, floats);
        var caller = _cluster.Silos[0];
        var grain = caller.GrainFactory.GetGrain<ITensorGrain>(1000 + floats);
        using var result = await grain.Scale(TensorPayload.FromSingles(values, floats), 2f);
        Assert.Equal([floats], result.Shape);
        Assert.True(values.Select(v => v * 2f).SequenceEqual(result.AsSingles().ToArray()));
    }

    [Fact]
    public async Task Large_and_small_calls_share_one_connection_without_mixing_up_frames()
    {
        var from = _cluster.Silos[0];
        var to = _cluster.Silos[1];
        await to.GrainFactory.GetGrain<ILocalTensorGrain>(1).Where();
        var target = from.GrainFactory.GetGrain<ILocalTensorGrain>(1);
        Assert.Equal(to.Address.ToString(), await target.Where());

        var payloads = Enumerable.Range(0, 6).Select(i => Values((1 << 18) + (i * 1000), i)).ToArray();
        var large = payloads.Select(async p =>
        {
            using var echoed = await target.Echo(TensorPayload.FromSingles(p, p.Length));
            return echoed.AsSingles().SequenceEqual(p);
        });
        var small = Enumerable.Range(0, 50).Select(_ => target.Where().ContinueWith(t => t.Result == to.Address.ToString(), TaskScheduler.Default));
        var all = await Task.WhenAll(large.Concat(small));
        Assert.All(all, Assert.True);
    }

    [Fact]
    public async Task On_the_same_silo_the_callee_gets_the_callers_memory_without_a_copy()
    {
        var silo = _cluster.Silos[2];
        var bytes = new byte[1 << 20];
        Random.Shared.NextBytes(bytes);
        LocalTensorGrain.Registered["same-silo"] = bytes;
        var grain = silo.GrainFactory.GetGrain<ILocalTensorGrain>(2);
        Assert.Equal(silo.Address.ToString(), await grain.Where());

        Assert.True(await grain.SharesMemory(new TensorPayload(bytes, [bytes.Length / 4]), "same-silo"));
        using var echoed = await grain.Echo(new TensorPayload(bytes, [bytes.Length / 4]));
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(echoed.Bytes, out var segment) && ReferenceEquals(segment.Array, bytes));

        // Across silos the bytes arrive in the receiver's own buffer.
        Assert.False(await _cluster.Silos[0].GrainFactory.GetGrain<ILocalTensorGrain>(2).SharesMemory(new TensorPayload(bytes, [bytes.Length / 4]), "same-silo"));
    }

    [Fact]
    public async Task A_payload_kept_after_its_call_stays_intact_while_other_messages_reuse_the_pools()
    {
        var holder = _cluster.Silos[1];
        await holder.GrainFactory.GetGrain<ILocalTensorGrain>(3).Where();
        var remote = _cluster.Silos[0].GrainFactory.GetGrain<ILocalTensorGrain>(3);
        var kept = new byte[3 << 20];
        Random.Shared.NextBytes(kept);
        await remote.Keep(new TensorPayload(kept, [kept.Length]));

        var other = new byte[3 << 20];
        for (var i = 0; i < 8; i++)
        {
            Random.Shared.NextBytes(other);
            Assert.Equal(ByteSum(other), await _cluster.Silos[0].GrainFactory.GetGrain<ITensorGrain>(50 + i).Sum(new TensorPayload(other, [other.Length])));
        }

        Assert.Equal(ByteSum(kept), await remote.KeptSum());
    }

    [Fact]
    public async Task Rented_payloads_are_filled_in_place_and_sent_across_silos()
    {
        var remote = _cluster.Silos[0].GrainFactory.GetGrain<ITensorGrain>(77);
        for (var round = 0; round < 4; round++)
        {
            using var payload = TensorPayload.Rent(TensorElementType.F32, 512, 300);
            Assert.Equal(512 * 300 * 4, payload.Bytes.Length);
            var values = payload.GetWritableSingles();
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = (i % 97) + round;
            }

            // Sent as is to another silo; the grain's returned payload comes back and is released there.
            using var scaled = await remote.Scale(payload, 0.5f);
            Assert.Equal([512, 300], scaled.Shape);
            var expected = payload.Bytes.ToArray();
            var input = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(expected);
            Assert.True(input.ToArray().Select(v => v * 0.5f).SequenceEqual(scaled.AsSingles().ToArray()));
        }

        using var received = await _cluster.Silos[0].GrainFactory.GetGrain<ITensorGrain>(78).Scale(TensorPayload.FromSingles([1f, 2f], 2), 1f);
        Assert.Throws<InvalidOperationException>(() => received.GetWritableBytes().Length);
        Assert.Equal(16, TensorPayload.Rent(TensorElementType.I64, 2).Bytes.Length);
    }

    [Fact]
    public async Task A_received_payload_relayed_to_a_third_silo_arrives_intact()
    {
        // The relay lives on silo 1, the expert on silo 2, the caller is silo 0.
        await _cluster.Silos[1].GrainFactory.GetGrain<ILocalTensorGrain>(4).Where();
        var values = Values(300_000, 7);
        var relay = _cluster.Silos[0].GrainFactory.GetGrain<ILocalTensorGrain>(4);
        using var result = await relay.Relay(TensorPayload.FromSingles(values, 300_000), 4242, 3f);
        Assert.True(values.Select(v => v * 3f).SequenceEqual(result.AsSingles().ToArray()));
    }

    [Fact]
    public void A_rented_buffer_returns_to_the_pool_only_when_its_last_holder_lets_go()
    {
        var payload = TensorPayload.Rent(TensorElementType.F32, 8192);
        var owner = payload.Owner!;
        var writer = new PooledBufferWriter();
        new Writer(writer).Write(payload);
        payload.Dispose();
        Assert.Equal(8192 * 4, owner.Memory.Length); // the message body being written holds it

        var message = new Orleans.MoE.Runtime.Messaging.Message().WithBody(writer);
        message.DetachFromSender();
        writer.Dispose();
        Assert.Equal(8192 * 4, owner.Memory.Length); // the locally delivered message holds it

        var reader = message.CreateReader();
        var received = reader.Read<TensorPayload>();
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(received.Bytes, out var a)
            && System.Runtime.InteropServices.MemoryMarshal.TryGetArray<byte>(owner.Memory, out var b) && ReferenceEquals(a.Array, b.Array));
        message.BodyOwner!.Release();
        Assert.Equal(8192 * 4, owner.Memory.Length); // the receiver's payload holds it

        received.Dispose();
        Assert.Throws<ObjectDisposedException>(() => owner.Memory);
    }
}
