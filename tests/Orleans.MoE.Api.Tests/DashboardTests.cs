namespace Orleans.MoE.Api.Tests;

/// <summary>The dashboard in Debian's Chromium (driven by playwright-core): it loads, shows the silos and every expert, and the playground streams.</summary>
public sealed class DashboardTests
{
    [Fact]
    public async Task The_dashboard_shows_three_silos_every_expert_and_streams_in_the_playground()
    {
        await using var mesh = await MeshCluster.StartAsync(3, new Dictionary<string, string> { [FrontEndServer.Model] = RepositoryPaths.DemoModel });
        await mesh.WaitForSpreadAsync(FrontEndServer.Model);
        await using var server = await FrontEndServer.StartForClusterAsync(mesh);
        var network = MeshCluster.Model(mesh.Silos[0], FrontEndServer.Model);
        var cells = network.MoeLayers.Sum(l => network.MoeBlock(l).ExpertCount);
        var screenshot = Path.Combine(Path.GetTempPath(), $"moe-dashboard-{Guid.NewGuid():N}.png");

        var seen = await NodeScripts.RunAsync("dashboard-check.mjs", [server.BaseUrl, "3", cells.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            new Dictionary<string, string> { ["DASHBOARD_SCREENSHOT"] = screenshot });

        Assert.Equal(3, seen.GetProperty("silos").GetInt32());
        Assert.Equal(cells, seen.GetProperty("cells").GetInt32());
        Assert.True(seen.GetProperty("growth_steps").GetInt32() >= 2, $"the playground's text grew while streaming: {seen}");
        Assert.False(string.IsNullOrWhiteSpace(seen.GetProperty("output").GetString()));
        Assert.True(new FileInfo(screenshot).Length > 10_000, "a screenshot of the page was taken");
        File.Delete(screenshot);
    }
}
