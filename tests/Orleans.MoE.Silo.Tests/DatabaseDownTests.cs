namespace Orleans.MoE.Silo.Tests;

/// <summary>A silo whose PostgreSQL server is down when it starts (a private server of this class's own, stopped and started again).</summary>
public sealed class DatabaseDownTests(PostgreSqlServer postgres) : IClassFixture<PostgreSqlServer>
{
    [Fact]
    public async Task A_silo_whose_database_is_down_at_start_retries_and_joins_when_it_is_up_or_gives_up_with_one_line()
    {
        var clusterId = Providers.Unique("down");
        var serviceId = Providers.Unique("svc");
        var gateway = SiloProcess.FreePort();
        await postgres.StopAsync();
        SiloProcess? patient = null;
        try
        {
            // Down for longer than Silo:StartRetryTime: exit code 1 and, last, one line with the reason and the server.
            var quick = Providers.Silo(clusterId, serviceId, SiloProcess.FreePort(), SiloProcess.FreePort()).OnPostgreSql(postgres);
            quick["Silo__StartRetryTime"] = "00:00:01";
            await using (var gaveUp = SiloProcess.Start("silo-config/multi-host.json", quick))
            {
                Assert.Equal(1, await gaveUp.WaitForExitAsync());
                var line = AzureStorageSiloTests.LastLine(gaveUp.Output);
                Assert.StartsWith($"moe-silo: could not start: cannot reach PostgreSQL: Failed to connect to 127.0.0.1:{postgres.Port}", line);
                Assert.Contains($"[Membership PostgreSql 127.0.0.1:{postgres.Port}/postgres, Storage PostgreSql 127.0.0.1:{postgres.Port}/postgres]", line);
                Assert.Contains("gave up after 00:00:01 (Silo:StartRetryTime)", line);
            }

            // Down for a while: the silo says so, tries again every 5 s and joins once the database is up.
            patient = SiloProcess.Start("silo-config/multi-host.json", Providers.Silo(clusterId, serviceId, SiloProcess.FreePort(), gateway).OnPostgreSql(postgres));
            Assert.True(await Eventually.TrueAsync(() => patient.Output.Contains("trying again in 5 s"), seconds: 30), patient.Output);
            Assert.Contains("moe-silo: cannot reach PostgreSQL", patient.Output);
        }
        finally
        {
            await postgres.StartAsync();
        }

        try
        {
            await patient.WaitStartedAsync();
            await using var client = await MeshTestClient.ConnectAsync([gateway], clusterId);
            Assert.Equal(0, await patient.TerminateAsync());
        }
        finally
        {
            await patient.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_database_without_orleans_schema_stops_the_silo_with_one_line_naming_the_script()
    {
        // template1 exists on every server and has none of Orleans' tables.
        var environment = Providers.Silo(Providers.Unique("noschema"), Providers.Unique("svc"), SiloProcess.FreePort(), SiloProcess.FreePort()).OnPostgreSql(postgres);
        environment["Membership__ConnectionString"] = postgres.ConnectionString.Replace("Database=postgres", "Database=template1", StringComparison.Ordinal);
        await using var silo = SiloProcess.Start("silo-config/multi-host.json", environment);

        Assert.Equal(1, await silo.WaitForExitAsync());
        var line = AzureStorageSiloTests.LastLine(silo.Output);
        Assert.StartsWith("moe-silo: could not start: PostgreSQL refused: ", line);
        Assert.Contains("is infra/postgresql/orleans.sql installed in that database?", line);
    }
}
