using System.Diagnostics;
using Xunit.Abstractions;

namespace Orleans.MoE.Silo.Tests;

/// <summary>
/// Orleans' membership with the mesh's LAN settings (MeshHostingExtensions.UseLanFailureDetection) declares
/// silos dead as the docs promise: a killed silo within 3 s, a hung one within 5 s. The bounds are the
/// behaviour under test; measured here at about 1-2 s and 2-3 s (see the output), so the margin is
/// about 1.5x-2x for a loaded 2-core machine.
/// </summary>
public sealed class FailureDetectionTests(PostgreSqlServer postgres, ITestOutputHelper output) : IClassFixture<PostgreSqlServer>
{
    private Dictionary<string, string> Environment(string clusterId, int gateway) => new()
    {
        ["Cluster__ClusterId"] = clusterId,
        ["Silo__Host"] = "127.0.0.1",
        ["Silo__Port"] = SiloProcess.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Silo__GatewayPort"] = gateway.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Membership__ConnectionString"] = postgres.ConnectionString,
        ["Storage__ConnectionString"] = postgres.ConnectionString,
        ["Mesh__Models__moe-tiny-py"] = Path.Combine(SiloProcess.Root, "models", "moe-tiny-py"),
    };

    [Fact]
    public async Task A_killed_silo_is_declared_dead_within_3_seconds_and_a_hung_one_within_5()
    {
        var clusterId = "fd-" + Guid.NewGuid().ToString("N")[..8];
        var gateway = SiloProcess.FreePort();
        await using var first = SiloProcess.Start("silo-config/multi-host.json", Environment(clusterId, gateway));
        await first.WaitStartedAsync();
        await using var second = SiloProcess.Start("silo-config/multi-host.json", Environment(clusterId, SiloProcess.FreePort()));
        await second.WaitStartedAsync();
        await using var third = SiloProcess.Start("silo-config/multi-host.json", Environment(clusterId, SiloProcess.FreePort()));
        await third.WaitStartedAsync();
        await using var client = await MeshTestClient.ConnectAsync([gateway], clusterId);
        var management = client.Client.GetGrain<IManagementGrain>(0);
        async Task<int> ActiveAsync() => (await management.GetHosts(onlyActive: true)).Count;
        Assert.True(await Eventually.TrueAsync(() => ActiveAsync().Result == 3, 30), "three silos active");

        async Task<TimeSpan> DeclaredDeadAsync(SiloProcess silo, string signal, int remaining)
        {
            var watch = Stopwatch.StartNew();
            await silo.SignalAsync(signal);
            while (await ActiveAsync() > remaining && watch.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(50);
            }

            output.WriteLine($"SIG{signal}: declared dead after {watch.Elapsed.TotalSeconds:F2} s");
            return watch.Elapsed;
        }

        var killed = await DeclaredDeadAsync(third, "KILL", 2);
        var hung = await DeclaredDeadAsync(second, "STOP", 1);

        Assert.True(killed < TimeSpan.FromSeconds(3), $"a killed silo was declared dead after {killed}");
        Assert.True(hung < TimeSpan.FromSeconds(5), $"a hung silo was declared dead after {hung}");
    }
}
