using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Trace;
using Orleans.Configuration;
using Orleans.MoE.Grains.Cluster;
using Orleans.MoE.Grains.Diagnostics;
using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Transport;

namespace Orleans.MoE.Grains.Tests;

/// <summary>
/// The data channel over real TCP (and TLS): many batches in flight on one connection, each answered with
/// its own rows; errors reported per batch; bad peers dropped alone; a server that goes away fails its
/// callers' batches with the transient <see cref="DataChannelException"/>.
/// </summary>
public sealed class DataChannelTests : IAsyncDisposable, IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly TestCertificates _cluster = new("cluster");
    private readonly TestCertificates _other = new("intruder");
    private readonly List<IAsyncDisposable> _owned = [];

    public async ValueTask DisposeAsync()
    {
        foreach (var owned in Enumerable.Reverse(_owned))
        {
            await owned.DisposeAsync();
        }
    }

    public void Dispose()
    {
        _cluster.Dispose();
        _other.Dispose();
    }

    [Fact]
    public async Task Concurrent_batches_on_one_connection_each_get_their_own_rows_and_missing_slots()
    {
        var server = Serve(new Doubling());
        var connection = await ConnectAsync(server);

        // Sizes on both sides of the 64 KiB coalescing threshold; expert 99 is "not hosted".
        var batches = Enumerable.Range(0, 40).Select(i => Batch(layer: i, rows: 1 + (i * 37 % 700), columns: 96, missingExpert: i % 3 == 0)).ToList();
        var results = await Task.WhenAll(batches.Select(b => connection.ExecuteAsync(b, Timeout, CancellationToken.None)));

        for (var i = 0; i < batches.Count; i++)
        {
            using var result = results[i];
            var sent = batches[i].Rows.Values.ToArray();
            Assert.Equal(sent.Select(v => v * 2), result.Rows.Values.ToArray());
            Assert.Equal(batches[i].Slots.Length == 2 ? new[] { 1 } : [], result.Missing);
            Assert.Equal(batches[i].Layer, result.ComputeMicroseconds);
            batches[i].Dispose();
        }
    }

    [Fact]
    public async Task A_traced_batch_runs_in_a_span_of_its_senders_trace_and_an_untraced_one_in_none()
    {
        var spans = new SpanCollection();
        using var sender = new ActivitySource("test-sender");
        using var tracing = Sdk.CreateTracerProviderBuilder().AddSource(MeshTelemetry.Name, sender.Name).AddInMemoryExporter(spans).Build();
        var server = Serve(new Doubling());
        var connection = await ConnectAsync(server);

        ActivityContext sent;
        using (var span = sender.StartActivity("send", ActivityKind.Client)!)
        {
            sent = span.Context;
            using var traced = Batch(layer: 4241, rows: 3, columns: 8);
            using var result = await connection.ExecuteAsync(traced, Timeout, CancellationToken.None);
        }

        using (var untraced = Batch(layer: 4242, rows: 2, columns: 8))
        {
            using var result = await connection.ExecuteAsync(untraced, Timeout, CancellationToken.None);
        }

        // The server's span ends just before its answer is written: it is exported by the time the answer arrives, or soon after.
        Assert.True(await Eventually.TrueAsync(() => Executions(spans, 4241).Count > 0, 10), "the traced batch's span was exported");
        var execution = Assert.Single(Executions(spans, 4241));
        Assert.Equal(sent.TraceId, execution.TraceId);
        Assert.Equal(sent.SpanId, execution.ParentSpanId);
        Assert.Equal(ActivityKind.Server, execution.Kind);
        Assert.Equal(3, execution.GetTagItem("moe.tokens"));
        Assert.Equal(3L * 8 * sizeof(float), execution.GetTagItem("moe.bytes"));
        Assert.Equal("0", execution.GetTagItem("moe.experts"));
        Assert.Empty(Executions(spans, 4242));
    }

    [Fact]
    public async Task An_executor_error_fails_only_its_batch_and_the_connection_serves_on()
    {
        var server = Serve(new Doubling());
        var connection = await ConnectAsync(server);
        using var bad = Batch(layer: Doubling.FailingLayer, rows: 2, columns: 8);
        using var good = Batch(layer: 1, rows: 2, columns: 8);

        var error = await Assert.ThrowsAsync<RemoteExpertException>(() => connection.ExecuteAsync(bad, Timeout, CancellationToken.None));
        Assert.Contains("no experts of layer -1", error.Message);
        Assert.False(MeshFaults.IsTransient(error));

        using var result = await connection.ExecuteAsync(good, Timeout, CancellationToken.None);
        Assert.Equal(good.Rows.Values.ToArray().Select(v => v * 2), result.Rows.Values.ToArray());
    }

    [Fact]
    public async Task A_peer_that_speaks_another_protocol_or_sends_an_oversized_frame_loses_its_connection_and_nothing_else()
    {
        var server = Serve(new Doubling(), o => o.MaxPayloadBytes = 1 << 20);
        var connection = await ConnectAsync(server);

        Assert.True(await IsDroppedAsync(server, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray()));

        var oversized = new byte[8 + DataChannelProtocol.RequestHeaderBytes];
        DataChannelProtocol.Hello.CopyTo(oversized);
        BinaryPrimitives.WriteInt32LittleEndian(oversized.AsSpan(8 + 12), 1 << 16); // rows
        BinaryPrimitives.WriteInt32LittleEndian(oversized.AsSpan(8 + 16), 1 << 10); // columns: 256 MiB of rows
        Assert.True(await IsDroppedAsync(server, oversized));

        using var batch = Batch(layer: 3, rows: 4, columns: 16);
        using var result = await connection.ExecuteAsync(batch, Timeout, CancellationToken.None);
        Assert.Equal(batch.Rows.Values.ToArray().Select(v => v * 2), result.Rows.Values.ToArray());
    }

    [Fact]
    public async Task With_tls_only_peers_holding_the_clusters_certificate_get_through()
    {
        var cluster = Security(_cluster.Issue("silo-a"));
        var server = Serve(new Doubling(), security: cluster);

        var member = await ConnectAsync(server, Security(_cluster.Issue("silo-b")));
        using var batch = Batch(layer: 2, rows: 3, columns: 8);
        using (var result = await member.ExecuteAsync(batch, Timeout, CancellationToken.None))
        {
            Assert.Equal(batch.Rows.Values.ToArray().Select(v => v * 2), result.Rows.Values.ToArray());
        }

        // Another CA's certificate: this side refuses the server's certificate (and the server the client's).
        await Assert.ThrowsAsync<DataChannelException>(() => ConnectAsync(server, Security(_other.Issue("intruder"))));

        // Plain TCP: the server wants a TLS handshake and drops the connection; the batch fails.
        var plain = await ConnectAsync(server, DataChannelSecurity.None);
        await Assert.ThrowsAsync<DataChannelException>(() => plain.ExecuteAsync(batch, Timeout, CancellationToken.None));
    }

    [Fact]
    public async Task A_server_that_goes_away_mid_batch_fails_the_waiting_calls_as_transient()
    {
        var stuck = new Stuck();
        var server = Serve(stuck);
        var connection = await ConnectAsync(server);
        using var batch = Batch(layer: 1, rows: 2, columns: 8);

        var call = connection.ExecuteAsync(batch, Timeout, CancellationToken.None);
        await stuck.Started.Task.WaitAsync(Timeout);
        await server.DisposeAsync();

        var error = await Assert.ThrowsAsync<DataChannelException>(() => call);
        Assert.True(MeshFaults.IsTransient(error));
        await Assert.ThrowsAsync<DataChannelException>(() => connection.ExecuteAsync(batch, Timeout, CancellationToken.None));
        stuck.Release.SetResult();
    }

    [Fact]
    public async Task A_batch_not_answered_in_time_times_out_and_its_late_answer_is_dropped()
    {
        var stuck = new Stuck();
        var server = Serve(stuck);
        var connection = await ConnectAsync(server);
        using var batch = Batch(layer: 1, rows: 2, columns: 8);

        await Assert.ThrowsAsync<TimeoutException>(() => connection.ExecuteAsync(batch, TimeSpan.FromMilliseconds(200), CancellationToken.None));
        stuck.Release.SetResult();

        // The late answer arrives and is dropped; the connection matches the next batch to its own answer.
        using var next = Batch(layer: 5, rows: 1, columns: 8);
        using var result = await connection.ExecuteAsync(next, Timeout, CancellationToken.None);
        Assert.Equal(5, result.ComputeMicroseconds);
    }

    [Fact]
    public async Task A_call_to_a_hung_silo_fails_when_membership_declares_it_dead_not_at_the_response_timeout()
    {
        var stuck = new Stuck();
        var server = Serve(stuck);
        var here = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 1), 1);
        var hung = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 2), 1);
        var membership = new Membership(here, hung);
        var lifecycle = new SiloLifecycleSubject(NullLogger<SiloLifecycleSubject>.Instance);
        var client = new DataChannelClient(
            new MeshSilos(new SiloDetails(here), membership, null!, NullLogger<MeshSilos>.Instance), membership, DataChannelSecurity.None,
            Options.Create(new MeshOptions()), Options.Create(new SiloMessagingOptions { ResponseTimeout = TimeSpan.FromHours(1) }));
        _owned.Add(client);
        client.Participate(lifecycle);
        await lifecycle.OnStart();
        client.Learn(hung, server.Endpoint!.ToString());
        using var batch = Batch(layer: 1, rows: 2, columns: 8);

        var call = client.ExecuteAsync(hung, batch, CancellationToken.None);
        await stuck.Started.Task.WaitAsync(Timeout);
        membership.Declare(hung, SiloStatus.Dead);

        // Nothing but the membership update can end the call this side of the hour-long response timeout.
        var error = await Assert.ThrowsAsync<DataChannelException>(() => call.WaitAsync(Timeout));
        Assert.Contains("declared", error.Message);
        Assert.True(MeshFaults.IsTransient(error));
        stuck.Release.SetResult();
    }

    private static List<Activity> Executions(SpanCollection spans, int layer) =>
        spans.Snapshot().Where(s => s.OperationName == "moe.experts.execute" && Equals(s.GetTagItem("moe.layer"), layer)).ToList();

    private DataChannelServer Serve(IExpertBatchExecutor executor, Action<DataChannelOptions>? configure = null, DataChannelSecurity? security = null)
    {
        var options = new MeshOptions();
        configure?.Invoke(options.DataChannel);
        var server = new DataChannelServer(executor, security ?? DataChannelSecurity.None, Options.Create(options), NullLogger<DataChannelServer>.Instance);
        server.Start(IPAddress.Loopback, IPAddress.Loopback);
        _owned.Add(server);
        return server;
    }

    private async Task<DataChannelConnection> ConnectAsync(DataChannelServer server, DataChannelSecurity? security = null)
    {
        var connection = await DataChannelConnection.OpenAsync(server.Endpoint!, "test-peer", security ?? DataChannelSecurity.None, Timeout, 1L << 30, CancellationToken.None);
        _owned.Add(connection);
        return connection;
    }

    private static DataChannelSecurity Security(Hosting.MeshTls tls)
    {
        var (certificate, authority) = tls.Load();
        return new DataChannelSecurity(certificate, authority);
    }

    /// <summary>Writes <paramref name="bytes"/> on a raw socket; true when the server closes the connection.</summary>
    private static async Task<bool> IsDroppedAsync(DataChannelServer server, byte[] bytes)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(server.Endpoint!);
        await socket.SendAsync(bytes);
        var buffer = new byte[64];
        try
        {
            return await socket.ReceiveAsync(buffer).WaitAsync(Timeout) == 0;
        }
        catch (SocketException)
        {
            return true; // reset
        }
    }

    /// <summary>A batch of <paramref name="rows"/> distinct values: expert 0 alone, or expert 0 and an expert 99 that the executors report missing.</summary>
    private static ExpertBatch Batch(int layer, int rows, int columns, bool missingExpert = false)
    {
        var payload = TensorPayload.Rent(rows, columns);
        var values = payload.Values;
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (layer * 1000) + (i * 0.25f);
        }

        ExpertSlot[] slots = missingExpert && rows > 1
            ? [new ExpertSlot(0, 0, rows - 1), new ExpertSlot(99, 0, 1)]
            : [new ExpertSlot(0, 0, rows)];
        return new ExpertBatch("m", layer, slots, payload);
    }

    /// <summary>Doubles every row; reports expert 99 missing (its rows doubled all the same), the layer as compute time, and fails layer -1.</summary>
    private sealed class Doubling : IExpertBatchExecutor
    {
        public const int FailingLayer = -1;

        public ValueTask<ExpertBatchResult> ExecuteAsync(ExpertBatch batch)
        {
            if (batch.Layer == FailingLayer)
            {
                throw new ArgumentException($"this silo has no experts of layer {batch.Layer}");
            }

            var output = TensorPayload.Rent(batch.Rows.Rows, batch.Rows.Columns);
            var input = batch.Rows.Values;
            var values = output.Values;
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = input[i] * 2;
            }

            var missing = batch.Slots.Select((s, i) => (s, i)).Where(x => x.s.Expert == 99).Select(x => x.i).ToArray();
            return ValueTask.FromResult(new ExpertBatchResult(output, missing, batch.Layer));
        }
    }

    /// <summary>Holds the first batch until released; answers the others at once with no rows.</summary>
    /// <summary>A membership service whose updates the test publishes.</summary>
    private sealed class Membership : IClusterMembershipService
    {
        private readonly System.Threading.Channels.Channel<ClusterMembershipSnapshot> _updates = System.Threading.Channels.Channel.CreateUnbounded<ClusterMembershipSnapshot>();

        public Membership(params SiloAddress[] active)
        {
            CurrentSnapshot = new ClusterMembershipSnapshot(
                active.ToImmutableDictionary(s => s, s => new ClusterMember(s, SiloStatus.Active, s.ToString())), new MembershipVersion(1));
            _updates.Writer.TryWrite(CurrentSnapshot);
        }

        public ClusterMembershipSnapshot CurrentSnapshot { get; private set; }

        public IAsyncEnumerable<ClusterMembershipSnapshot> MembershipUpdates => _updates.Reader.ReadAllAsync();

        public void Declare(SiloAddress silo, SiloStatus status)
        {
            CurrentSnapshot = new ClusterMembershipSnapshot(
                CurrentSnapshot.Members.SetItem(silo, new ClusterMember(silo, status, silo.ToString())), new MembershipVersion(CurrentSnapshot.Version.Value + 1));
            _updates.Writer.TryWrite(CurrentSnapshot);
        }

        public ValueTask Refresh(MembershipVersion minimumVersion = default, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public Task<bool> TryKill(SiloAddress siloAddress) => throw new NotSupportedException();
    }

    private sealed class SiloDetails(SiloAddress address) : ILocalSiloDetails
    {
        public string Name => "test-silo";

        public string ClusterId => "test";

        public string DnsHostName => "localhost";

        public SiloAddress SiloAddress => address;

        public SiloAddress GatewayAddress => address;
    }

    private sealed class Stuck : IExpertBatchExecutor
    {
        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async ValueTask<ExpertBatchResult> ExecuteAsync(ExpertBatch batch)
        {
            if (Started.TrySetResult())
            {
                await Release.Task;
            }

            return new ExpertBatchResult(TensorPayload.Rent(0, batch.Rows.Columns), [], batch.Layer);
        }
    }
}
