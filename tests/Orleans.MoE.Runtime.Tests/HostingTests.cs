using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.MoE.Runtime.Hosting;
using Orleans.MoE.Runtime.Tests.Grains;

namespace Orleans.MoE.Runtime.Tests;

public sealed class HostingTests
{
    [Fact]
    public async Task A_silo_hosted_the_usual_dotnet_way_reads_its_settings_from_configuration()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Cluster:ClusterId"] = "hosted",
            ["Cluster:ClusterSecret"] = "a-secret-of-enough-length",
            ["Silo:Port"] = "0",
            ["Silo:Metadata:gpu"] = "true",
            ["Messaging:ResponseTimeout"] = "00:00:05",
        });
        builder.UseMoESilo();
        using var host = builder.Build();
        await host.StartAsync();
        try
        {
            var silo = host.Services.GetRequiredService<Silo>();
            Assert.True(silo.IsRunning);
            Assert.Equal(3, await host.Services.GetRequiredService<IGrainFactory>().GetGrain<ICounterGrain>("hosted").Add(3));
            Assert.Equal(silo.Address.ToString(), await host.Services.GetRequiredService<IGrainFactory>().GetGrain<IGpuGrain>("g").Silo());
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public void A_missing_cluster_secret_stops_the_silo_from_starting()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.UseMoESilo();
        using var host = builder.Build();
        var error = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => host.Services.GetRequiredService<Silo>());
        Assert.Contains("ClusterSecret", error.Message);
    }
}
