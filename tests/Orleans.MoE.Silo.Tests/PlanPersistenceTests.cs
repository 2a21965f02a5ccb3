using Xunit.Abstractions;
using Orleans.MoE.Grains.Placement;

namespace Orleans.MoE.Silo.Tests;

/// <summary>
/// The expert plan (the mesh's only grain state) in each durable provider: it survives the plan grain's
/// deactivation, the SIGKILL of the silo holding it and a restart of the whole cluster. Silo processes,
/// real servers (Azurite, PostgreSQL), one service id per test so the runs do not see each other's state.
/// </summary>
public sealed class PlanPersistenceTests(AzuriteServer azurite, PostgreSqlServer postgres, ITestOutputHelper output) : IClassFixture<AzuriteServer>, IClassFixture<PostgreSqlServer>
{
    [Theory]
    [InlineData("AzureTable")]
    [InlineData("AzureBlob")]
    [InlineData("PostgreSql")]
    public async Task The_plan_survives_deactivation_a_silo_kill_and_a_whole_cluster_restart(string provider)
    {
        var clusterId = Providers.Unique("plan");
        var serviceId = Providers.Unique("svc");
        var ports = new[] { SiloProcess.FreePort(), SiloProcess.FreePort() };
        var gateways = new[] { SiloProcess.FreePort(), SiloProcess.FreePort() };
        var silos = new List<SiloProcess>();
        var victim = -1;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        void Phase(string what) => output.WriteLine($"{clock.Elapsed.TotalSeconds,6:F1} s  {what}");
        try
        {
            for (var i = 0; i < 2; i++)
            {
                silos.Add(SiloProcess.Start(Config(provider), Settings(provider, clusterId, serviceId, ports[i], gateways[i])));
            }

            await Task.WhenAll(silos.Select(s => s.WaitStartedAsync()));
            Phase("two silos started");
            MeshStatus before;
            await using (var client = await MeshTestClient.ConnectAsync(gateways, clusterId))
            {
                var plan = client.Client.GetGrain<IMeshPlanGrain>(Providers.Demo);
                var management = client.Client.GetGrain<IManagementGrain>(0);

                // Both silos have reported a few rounds: a plan (version > 0), the checkpoint's fingerprint, load history.
                before = await UntilAsync(plan, s => s.Plan.Version > 0 && s.Fingerprint is not null && s.HistoryRounds >= 3 && s.Silos.Length == 2);
                Phase($"plan version {before.Plan.Version}, {before.HistoryRounds} load rounds");

                // Deactivation: the next call activates the grain again, from storage.
                await management.DeactivateGrain(plan.GetGrainId());
                before = Survived(before, await UntilAsync(plan, _ => true));
                Phase($"read back after deactivation: plan version {before.Plan.Version}, {before.HistoryRounds} load rounds");

                // SIGKILL of the silo holding the plan: it reactivates on the other silo, from storage.
                var holder = await UntilAsync(async () => await management.GetActivationAddress(plan), a => a is not null);
                victim = Array.IndexOf(ports, holder!.Endpoint.Port);
                Assert.True(victim >= 0, $"the plan is on {holder}, not on a silo of this test");
                await silos[victim].SignalAsync("KILL");
                await silos[victim].WaitForExitAsync();
                Phase($"killed the silo holding the plan ({holder})");
                before = Survived(before, await UntilAsync(plan, s => s.Silos.Length == 1, seconds: 60));
                Assert.Equal(ports[1 - victim], (await management.GetActivationAddress(plan))!.Endpoint.Port);
                Phase($"read back on the other silo: plan version {before.Plan.Version}, {before.HistoryRounds} load rounds");
            }

            // The whole cluster stops (the survivor leaves gracefully) and a new silo starts with the same service id.
            Assert.Equal(0, await silos[1 - victim].TerminateAsync());
            Phase("the other silo stopped");
            var restarted = Settings(provider, clusterId, serviceId, SiloProcess.FreePort(), gateways[0]);
            restarted["Mesh__Balancer__Interval"] = "00:10:00"; // no reports: the state read back is exactly the one stored
            silos.Add(SiloProcess.Start(Config(provider), restarted));
            await silos[^1].WaitStartedAsync();
            Phase("a new silo started");
            await using (var client = await MeshTestClient.ConnectAsync([gateways[0]], clusterId))
            {
                var after = Survived(before, await UntilAsync(client.Client.GetGrain<IMeshPlanGrain>(Providers.Demo), _ => true));
                Phase($"read back after the restart: plan version {after.Plan.Version}, {after.HistoryRounds} load rounds");
            }

            Assert.Equal(0, await silos[^1].TerminateAsync());
        }
        finally
        {
            foreach (var silo in silos)
            {
                await silo.DisposeAsync();
            }
        }
    }

    /// <summary>The state after is the state before or a later one: same checkpoint, a plan version and a load history that never went back (lost state starts again at 0).</summary>
    private static MeshStatus Survived(MeshStatus before, MeshStatus after)
    {
        Assert.Equal(before.Fingerprint, after.Fingerprint);
        Assert.True(after.Plan.Version >= before.Plan.Version, $"plan version {after.Plan.Version} after, {before.Plan.Version} before");
        Assert.True(after.HistoryRounds >= before.HistoryRounds, $"{after.HistoryRounds} load rounds after, {before.HistoryRounds} before");
        return after;
    }

    private static string Config(string provider) => provider == "PostgreSql" ? "silo-config/multi-host.json" : "silo-config/azure.json";

    private Dictionary<string, string> Settings(string provider, string clusterId, string serviceId, int port, int gatewayPort)
    {
        var environment = Providers.Silo(clusterId, serviceId, port, gatewayPort);
        return provider == "PostgreSql" ? environment.OnPostgreSql(postgres) : environment.OnAzure(azurite, provider);
    }

    private static Task<MeshStatus> UntilAsync(IMeshPlanGrain plan, Func<MeshStatus, bool> condition, double seconds = 30) =>
        UntilAsync(plan.GetStatusAsync, condition, seconds);

    /// <summary>Calls until the answer satisfies <paramref name="condition"/>; calls that fail while the cluster recovers are tried again.</summary>
    private static async Task<T> UntilAsync<T>(Func<Task<T>> call, Func<T, bool> condition, double seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            Exception? failure = null;
            T? last = default;
            try
            {
                // A call caught by the kill waits for Orleans' response timeout (30 s): give up on it sooner and call again.
                last = await call().WaitAsync(TimeSpan.FromSeconds(2));
                if (condition(last))
                {
                    return last;
                }
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException)
            {
                failure = e;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"no answer as expected within {seconds} s; last: {(object?)failure ?? last}");
            }

            await Task.Delay(100);
        }
    }
}
