using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.MoE.Grains;
using Orleans.MoE.Grains.Placement;
using Orleans.Storage;

namespace Orleans.MoE.Silo.Tests;

/// <summary>
/// Racing writers on each durable provider, as moe-silo configures it (<see cref="SiloConfiguration"/>, a silo
/// host in this process): a write with a stale ETag fails with Orleans' <see cref="InconsistentStateException"/>,
/// of writers starting from the same version exactly one wins, and nothing they did is lost silently.
/// </summary>
public sealed class StorageConcurrencyTests(AzuriteServer azurite, PostgreSqlServer postgres) : IClassFixture<AzuriteServer>, IClassFixture<PostgreSqlServer>
{
    private const string StateName = "mesh-plan";

    [Theory]
    [InlineData("AzureTable")]
    [InlineData("AzureBlob")]
    [InlineData("PostgreSql")]
    public async Task Racing_writers_get_an_etag_conflict_not_a_lost_update(string provider)
    {
        using var host = await StartSiloAsync(provider);
        var storage = host.Services.GetRequiredKeyedService<IGrainStorage>(MeshStorage.Name);
        var grain = GrainId.Create("moe-race", Guid.NewGuid().ToString("N"));

        // Two writers create the state at once: one insert wins, the other is told.
        var created = await RaceAsync(storage, grain, [new GrainState<MeshPlanState>(Plan(1)), new GrainState<MeshPlanState>(Plan(2))]);
        var stored = await ReadAsync(storage, grain);
        Assert.Equal(created.Version, stored.State!.Version);

        // A writer that read before another wrote: its write fails, the other's stays.
        var early = await ReadAsync(storage, grain);
        var late = await ReadAsync(storage, grain);
        late.State!.Version = 10;
        await storage.WriteStateAsync(StateName, grain, late);
        early.State!.Version = 11;
        await Assert.ThrowsAnyAsync<InconsistentStateException>(() => storage.WriteStateAsync(StateName, grain, early));
        Assert.Equal(10, (await ReadAsync(storage, grain)).State!.Version);

        // Eight writers from the same version at once: exactly one wins, and its state is the one stored.
        var readers = new List<GrainState<MeshPlanState>>();
        for (var i = 0; i < 8; i++)
        {
            var reader = await ReadAsync(storage, grain);
            reader.State!.Version = 100 + i;
            readers.Add(reader);
        }

        var winner = await RaceAsync(storage, grain, readers);
        Assert.Equal(winner.Version, (await ReadAsync(storage, grain)).State!.Version);

        // The winner's ETag writes on; a loser that reads again does too.
        var next = await ReadAsync(storage, grain);
        next.State!.Version = 200;
        await storage.WriteStateAsync(StateName, grain, next);
        Assert.Equal(200, (await ReadAsync(storage, grain)).State!.Version);
        await host.StopAsync();
    }

    /// <summary>Writes every state at once; exactly one must succeed and the others fail with an ETag conflict. Returns the winner's state.</summary>
    private static async Task<MeshPlanState> RaceAsync(IGrainStorage storage, GrainId grain, List<GrainState<MeshPlanState>> writers)
    {
        var results = await Task.WhenAll(writers.Select(async w =>
        {
            try
            {
                await storage.WriteStateAsync(StateName, grain, w);
                return (Writer: w, Failure: (Exception?)null);
            }
            catch (Exception e)
            {
                return (Writer: w, Failure: e);
            }
        }));
        var winners = results.Where(r => r.Failure is null).ToList();
        Assert.True(winners.Count == 1, $"{winners.Count} of {writers.Count} racing writes succeeded");
        foreach (var (_, failure) in results.Where(r => r.Failure is not null))
        {
            Assert.IsAssignableFrom<InconsistentStateException>(failure);
        }

        return winners[0].Writer.State!;
    }

    private static async Task<GrainState<MeshPlanState>> ReadAsync(IGrainStorage storage, GrainId grain)
    {
        var state = new GrainState<MeshPlanState>(new MeshPlanState());
        await storage.ReadStateAsync(StateName, grain, state);
        Assert.True(state.RecordExists);
        return state;
    }

    private static MeshPlanState Plan(int version) => new() { Version = version, Fingerprint = "f" + version.ToString(CultureInfo.InvariantCulture) };

    /// <summary>A silo host in this process with the mesh's grain storage as moe-silo configures it (membership: localhost; the service id new, so no state is shared with other tests).</summary>
    private async Task<IHost> StartSiloAsync(string provider)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Cluster:ClusterId"] = Providers.Unique("race"),
            ["Cluster:ServiceId"] = Providers.Unique("svc"),
            ["Membership:Provider"] = "Localhost",
            ["Storage:Provider"] = provider,
            ["Storage:ConnectionString"] = provider == "PostgreSql" ? postgres.ConnectionString : azurite.ConnectionString,
        });
        builder.UseOrleans(silo => SiloConfiguration.ApplyProviders(silo, builder.Configuration));
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }
}
