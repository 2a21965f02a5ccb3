using Npgsql;
using Orleans.MoE.Runtime.Membership;
using Orleans.MoE.Runtime.PostgreSql;
using Orleans.MoE.Runtime.Storage;
using Orleans.MoE.Runtime.Testing;
using Orleans.MoE.Runtime.Tests.Grains;

namespace Orleans.MoE.Runtime.Tests;

/// <summary>The storage contract, for every provider: read what was written, stale writers fail.</summary>
public abstract class GrainStorageContract
{
    protected abstract IGrainStorage CreateStorage();

    [Fact]
    public async Task Written_state_reads_back_with_its_etag()
    {
        var storage = CreateStorage();
        var grain = new GrainId("T", Guid.NewGuid().ToString("N"));
        Assert.Equal((null, null), await storage.ReadAsync("s", grain, default));
        var etag = await storage.WriteAsync("s", grain, [1, 2, 3], null, default);
        var (data, read) = await storage.ReadAsync("s", grain, default);
        Assert.Equal([1, 2, 3], data);
        Assert.Equal(etag, read);
        var next = await storage.WriteAsync("s", grain, [4], etag, default);
        Assert.NotEqual(etag, next);
        await storage.ClearAsync("s", grain, next, default);
        Assert.Equal((null, null), await storage.ReadAsync("s", grain, default));
    }

    [Fact]
    public async Task Of_two_racing_writers_with_the_same_etag_exactly_one_wins()
    {
        var storage = CreateStorage();
        var grain = new GrainId("T", Guid.NewGuid().ToString("N"));
        var etag = await storage.WriteAsync("s", grain, [0], null, default);
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(async i =>
        {
            try
            {
                await storage.WriteAsync("s", grain, [(byte)(i + 1)], etag, default);
                return true;
            }
            catch (InconsistentStateException)
            {
                return false;
            }
        }));
        Assert.Equal(1, results.Count(r => r));
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteAsync("s", grain, [9], null, default));
    }

    [Fact]
    public async Task A_grain_reads_its_state_on_activation_after_its_silo_is_killed()
    {
        var storage = CreateStorage();
        await using var cluster = await TestCluster.StartAsync(2, storage: storage);
        var key = Guid.NewGuid().ToString("N");
        var grain = cluster.Silos[0].GrainFactory.GetGrain<IBankGrain>(key);
        await grain.Deposit(10);
        await grain.Deposit(5);
        var host = cluster.Silos.Single(s => s.ActiveGrains.Any(g => g.Key == key));
        var survivor = cluster.Silos.Single(s => s != host);
        cluster.KillSilo(host);

        // Between the writes the silo died: the new activation starts from the last write.
        var again = survivor.GrainFactory.GetGrain<IBankGrain>(key);
        Assert.Equal(15, await again.Balance());
        Assert.Equal(18, await again.Deposit(3));
    }
}

public sealed class MemoryGrainStorageTests : GrainStorageContract
{
    protected override IGrainStorage CreateStorage() => new MemoryGrainStorage();
}

public sealed class DiskGrainStorageTests : GrainStorageContract, IDisposable
{
    private readonly string _directory = System.IO.Directory.CreateTempSubdirectory("moe-state-").FullName;

    public void Dispose() => System.IO.Directory.Delete(_directory, recursive: true);

    protected override IGrainStorage CreateStorage() => new DiskGrainStorage(_directory);

    [Fact]
    public async Task Writers_in_separate_storage_instances_on_one_directory_cannot_both_win()
    {
        // As two silos (or processes) sharing the folder: no in-memory lock is shared between them.
        var grain = new GrainId("T", Guid.NewGuid().ToString("N"));
        var etag = await new DiskGrainStorage(_directory).WriteAsync("s", grain, [0], null, default);
        for (var round = 0; round < 5; round++)
        {
            var results = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => Task.Run(async () =>
            {
                try
                {
                    return await new DiskGrainStorage(_directory).WriteAsync("s", grain, [(byte)i], etag, default);
                }
                catch (InconsistentStateException)
                {
                    return null;
                }
            })));
            var winners = results.Where(r => r is not null).ToList();
            Assert.Single(winners);
            Assert.Equal(winners[0], (await new DiskGrainStorage(_directory).ReadAsync("s", grain, default)).ETag);
            etag = winners[0];
        }
    }
}

[Collection(PostgreSqlTestGroup.Name)]
public sealed class PostgreSqlGrainStorageTests(PostgreSqlServer server) : GrainStorageContract
{
    protected override IGrainStorage CreateStorage() => new PostgreSqlGrainStorage(NpgsqlDataSource.Create(server.ConnectionString), "svc-" + Guid.NewGuid().ToString("N")[..6]);
}

[Collection(PostgreSqlTestGroup.Name)]
public sealed class PostgreSqlMembershipTests(PostgreSqlServer server)
{
    [Fact]
    public async Task Rows_are_versioned_and_concurrent_writers_cannot_both_win()
    {
        var table = new PostgreSqlMembershipTable(NpgsqlDataSource.Create(server.ConnectionString), "c-" + Guid.NewGuid().ToString("N")[..6]);
        var silo = new SiloAddress("127.0.0.1", 11111, 1);
        var entry = new MembershipEntry(silo, SiloStatus.Joining, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow, [], new Dictionary<string, string> { ["gpu"] = "true" });
        var empty = await table.ReadAllAsync();
        Assert.True(await table.InsertRowAsync(entry, empty.Version));
        Assert.False(await table.InsertRowAsync(entry, empty.Version));

        var snapshot = await table.ReadAllAsync();
        var (row, etag) = snapshot.Entries.Single();
        Assert.Equal("true", row.Metadata["gpu"]);
        var first = table.UpdateRowAsync(row with { Status = SiloStatus.Active }, etag, snapshot.Version);
        var second = table.UpdateRowAsync(row with { Status = SiloStatus.Dead }, etag, snapshot.Version);
        var outcomes = await Task.WhenAll(first, second);
        Assert.Equal(1, outcomes.Count(o => o));
        Assert.Equal(snapshot.Version + 1, (await table.ReadAllAsync()).Version);
    }

    [Fact]
    public async Task A_cluster_on_postgresql_membership_detects_a_killed_silo_and_keeps_serving()
    {
        var table = new PostgreSqlMembershipTable(NpgsqlDataSource.Create(server.ConnectionString), "cluster-" + Guid.NewGuid().ToString("N")[..6]);
        var storage = new PostgreSqlGrainStorage(NpgsqlDataSource.Create(server.ConnectionString), "bank");
        await using var cluster = await TestCluster.StartAsync(3, membership: table, storage: storage);
        var keys = Enumerable.Range(0, 12).Select(i => $"acct-{Guid.NewGuid():N}").ToList();
        foreach (var key in keys)
        {
            await cluster.GrainFactory.GetGrain<IBankGrain>(key).Deposit(7);
        }

        var victim = cluster.Silos[2];
        cluster.KillSilo(victim);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (cluster.Primary.ActiveSilos.Contains(victim.Address))
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), "never declared dead");
            await Task.Delay(20);
        }

        var snapshot = await table.ReadAllAsync();
        Assert.Equal(SiloStatus.Dead, snapshot.Entries.Single(e => e.Entry.Silo == victim.Address).Entry.Status);
        foreach (var key in keys)
        {
            Assert.Equal(8, await cluster.Silos[1].GrainFactory.GetGrain<IBankGrain>(key).Deposit(1));
        }
    }
}
