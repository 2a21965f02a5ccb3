namespace Orleans.MoE.Silo.Tests;

/// <summary>moe-silo processes on Azure Storage (a private Azurite): Orleans' Azure Table clustering and Azure grain storage, and accounts that refuse.</summary>
public sealed class AzureStorageSiloTests(AzuriteServer azurite) : IClassFixture<AzuriteServer>
{

    [Fact]
    public async Task Two_silo_processes_on_azure_table_clustering_serve_the_model_and_one_leaves_gracefully()
    {
        var clusterId = Providers.Unique("azure");
        var serviceId = Providers.Unique("svc");
        var gateways = new[] { SiloProcess.FreePort(), SiloProcess.FreePort() };
        await using var first = SiloProcess.Start("silo-config/azure.json", Providers.Silo(clusterId, serviceId, SiloProcess.FreePort(), gateways[0]).OnAzure(azurite));
        await using var second = SiloProcess.Start("silo-config/azure.json", Providers.Silo(clusterId, serviceId, SiloProcess.FreePort(), gateways[1]).OnAzure(azurite));
        await Task.WhenAll(first.WaitStartedAsync(), second.WaitStartedAsync());

        await using var client = await MeshTestClient.ConnectAsync(gateways, clusterId);
        var expected = DemoGeneration.Expected(16);
        Assert.Equal(expected, await DemoGeneration.GenerateAsync(client, 16));

        Assert.Equal(0, await second.TerminateAsync());
        Assert.Contains("stopped", second.Output);
        Assert.Equal(expected, await DemoGeneration.GenerateAsync(client, 16));
        Assert.Equal(0, await first.TerminateAsync());
    }

    [Fact]
    public async Task A_storage_account_that_refuses_or_is_not_there_stops_the_silo_with_one_line()
    {
        // A wrong key: Azure Storage answers 403 at once; retrying would not help, so exit code 2 (a setting to fix), like a bad configuration.
        var wrongKey = Providers.Silo("refused", "refused", SiloProcess.FreePort(), SiloProcess.FreePort()).OnAzure(azurite);
        wrongKey["Membership__ConnectionString"] = azurite.ConnectionStringWithWrongKey;
        await using var refused = SiloProcess.Start("silo-config/azure.json", wrongKey);

        // Nothing listening: the Azure SDK tries each request 4 times (about 6 s); moe-silo would try again every 5 s
        // until Silo:StartRetryTime (1 s here, so no second attempt: DatabaseDownTests shows those), then exits 1.
        var nowhere = Providers.Silo("nowhere", "nowhere", SiloProcess.FreePort(), SiloProcess.FreePort()).OnAzure(azurite);
        nowhere["Storage__ConnectionString"] = AzuriteServer.ConnectionStringToNothing();
        nowhere["Membership__ConnectionString"] = nowhere["Storage__ConnectionString"];
        nowhere["Silo__StartRetryTime"] = "00:00:01";
        await using var absent = SiloProcess.Start("silo-config/azure.json", nowhere);

        Assert.Equal(2, await refused.WaitForExitAsync());
        var line = LastLine(refused.Output);
        Assert.StartsWith("moe-silo: could not start: Azure Storage refused the request (403", line);
        Assert.Contains("check the account name and key", line);
        Assert.Contains($"Membership AzureTable http://127.0.0.1:{azurite.TablePort}/devstoreaccount1", line);
        Assert.DoesNotContain(AzuriteServer.AccountKey, refused.Output);

        Assert.Equal(1, await absent.WaitForExitAsync());
        line = LastLine(absent.Output);
        Assert.StartsWith("moe-silo: could not start: cannot reach Azure Storage: Connection refused (127.0.0.1:", line);
        Assert.Contains("gave up after 00:00:01 (Silo:StartRetryTime)", line);
        Assert.Single(absent.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries)); // waited for before anything of the silo runs: no Orleans log
    }

    [Fact]
    public async Task Missing_or_malformed_azure_settings_exit_with_a_one_line_reason()
    {
        var cases = new (string Key, string? Value, string Reason)[]
        {
            ("Membership__ConnectionString", null, "Membership:ConnectionString is required"),
            ("Storage__ConnectionString", "not a connection string", "Storage:ConnectionString is not an Azure Storage connection string"),
            ("Storage__Container", "Grain_State", "Storage:Container 'Grain_State' is not an Azure blob container name"),
            ("Storage__Provider", "S3", "Storage:Provider 'S3' is not one of Memory, PostgreSql, AzureTable, AzureBlob"),
        };
        var silos = cases.Select(c =>
        {
            var environment = Providers.Silo("bad", "bad", SiloProcess.FreePort(), SiloProcess.FreePort()).OnAzure(azurite);
            environment[c.Key] = c.Value ?? "";
            return SiloProcess.Start("silo-config/azure.json", environment);
        }).ToList();
        try
        {
            foreach (var (silo, (_, _, reason)) in silos.Zip(cases))
            {
                Assert.Equal(2, await silo.WaitForExitAsync());
                var lines = silo.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
                Assert.Single(lines);
                Assert.Contains(reason, lines[0]);
            }
        }
        finally
        {
            foreach (var silo in silos)
            {
                await silo.DisposeAsync();
            }
        }
    }

    internal static string LastLine(string output) => output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].TrimEnd('\r');

}
