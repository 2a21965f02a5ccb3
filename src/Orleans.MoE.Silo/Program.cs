using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.MoE.Grains;
using Orleans.MoE.Grains.Hosting;
using Orleans.MoE.Silo;

// moe-silo [--config FILE] [--Section:Key value ...]
// Settings: the config file, then environment variables (Cluster__ClusterId, Mesh__Models__NAME, ...),
// then the command line. Stops gracefully on SIGTERM / Ctrl-C: experts move off the silo first.
try
{
    var configuration = new ConfigurationManager();
    var file = ConfigFile(args);
    if (file is not null)
    {
        if (!File.Exists(file))
        {
            throw new SiloConfigurationException($"{file}: the configuration file does not exist");
        }

        configuration.AddJsonFile(Path.GetFullPath(file), optional: false);
    }

    var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
    {
        Args = args.Where((a, i) => a != "--config" && (i == 0 || args[i - 1] != "--config")).ToArray(),
        Configuration = configuration,
    });
    builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(60));
    // Orleans and its resilience pipelines log every placement at Information: only their warnings by default.
    builder.Logging.AddFilter("Orleans", LogLevel.Warning).AddFilter("Polly", LogLevel.Warning);
    builder.UseOrleans(silo =>
    {
        SiloConfiguration.ApplyProviders(silo, builder.Configuration);
        silo.AddMoEMesh(builder.Configuration);
    });
    using var host = builder.Build();

    // Invalid settings end here with their one-line reason rather than in the host's start-up log.
    _ = host.Services.GetRequiredService<IOptions<MeshOptions>>().Value;
    await host.StartAsync().ConfigureAwait(false);
    var silo = host.Services.GetRequiredService<ILocalSiloDetails>();
    Console.WriteLine($"Silo {silo.SiloAddress} started: silos connect to {silo.SiloAddress.Endpoint}, clients to {silo.GatewayAddress?.Endpoint}");
    await host.WaitForShutdownAsync().ConfigureAwait(false);
    Console.WriteLine($"Silo {silo.SiloAddress} stopped");
    return 0;
}
catch (Exception e) when (e is SiloConfigurationException or OptionsValidationException or InvalidDataException or FormatException)
{
    await Console.Error.WriteLineAsync($"moe-silo: {e.Message}").ConfigureAwait(false);
    return 2;
}

static string? ConfigFile(string[] args)
{
    var index = Array.IndexOf(args, "--config");
    return index < 0 ? null
        : index + 1 < args.Length ? args[index + 1]
        : throw new SiloConfigurationException("--config needs a file name");
}
