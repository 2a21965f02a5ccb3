using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;
using Orleans.MoE.Grains;
using Orleans.MoE.Grains.Hosting;
using Orleans.MoE.Silo;

// moe-silo [--config FILE] [--Section:Key value ...]
// Settings: the config file, then environment variables (Cluster__ClusterId, Mesh__Models__NAME, ...),
// then the command line. Stops gracefully on SIGTERM / Ctrl-C: experts move off the silo first.
// Exit codes: 0 stopped, 2 a bad setting (or credentials the membership/storage server refuses),
// 1 any other failure to start (its membership or storage server unreachable for Silo:StartRetryTime).
IConfiguration configuration = new ConfigurationManager();
try
{
    var file = ConfigFile(args);
    if (file is not null && !File.Exists(file))
    {
        throw new SiloConfigurationException($"{file}: the configuration file does not exist");
    }

    var hostArgs = args.Where((a, i) => a != "--config" && (i == 0 || args[i - 1] != "--config")).ToArray();
    using var host = BuildHost(file, hostArgs);
    configuration = host.Services.GetRequiredService<IConfiguration>();
    var retryTime = StartRetryTime(configuration);

    // Invalid settings end here with their one-line reason rather than in the host's start-up log.
    _ = host.Services.GetRequiredService<IOptions<MeshOptions>>().Value;

    // The membership and storage servers first: one that does not answer (down, not up yet: VMs booting
    // together) is waited for, one line every 5 s, until Silo:StartRetryTime has passed. Only then does the
    // silo start (a failed Orleans start cannot be retried in the same process: it leaves its listeners open).
    var started = DateTime.UtcNow;
    for (var attempt = 1; ; attempt++)
    {
        try
        {
            await ServerCheck.ReachAsync(configuration).ConfigureAwait(false);
            break;
        }
        catch (Exception e) when (StartFailure.Classify(e) == StartFailureKind.Unreachable)
        {
            if (DateTime.UtcNow - started >= retryTime)
            {
                await Console.Error.WriteLineAsync($"moe-silo: could not start: {StartFailure.Explain(e, configuration)}; gave up after {retryTime:c} (Silo:StartRetryTime)").ConfigureAwait(false);
                return 1;
            }

            await Console.Error.WriteLineAsync($"moe-silo: {StartFailure.Explain(e, configuration)}; trying again in 5 s (attempt {attempt}, for up to {retryTime:c}: Silo:StartRetryTime)").ConfigureAwait(false);
            await Task.Delay(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
    }

    await host.StartAsync().ConfigureAwait(false);
    var silo = host.Services.GetRequiredService<ILocalSiloDetails>();
    Console.WriteLine($"Silo {silo.SiloAddress} started: silos connect to {silo.SiloAddress.Endpoint}, clients to {silo.GatewayAddress?.Endpoint}");
    await host.WaitForShutdownAsync().ConfigureAwait(false);
    Console.WriteLine($"Silo {silo.SiloAddress} stopped");
    return 0;
}
catch (Exception e) when (e is SiloConfigurationException or OptionsValidationException or OrleansConfigurationException or InvalidDataException or FormatException)
{
    await Console.Error.WriteLineAsync($"moe-silo: {e.Message}").ConfigureAwait(false);
    return 2;
}
catch (Exception e)
{
    // The silo could not start: one line saying why and against which servers (after Orleans' own account, with stack traces, in the log).
    await Console.Error.WriteLineAsync($"moe-silo: could not start: {StartFailure.Explain(e, configuration)}").ConfigureAwait(false);
    return StartFailure.Classify(e) == StartFailureKind.Refused ? 2 : 1;
}

static IHost BuildHost(string? file, string[] args)
{
    var configuration = new ConfigurationManager();
    if (file is not null)
    {
        configuration.AddJsonFile(Path.GetFullPath(file), optional: false);
    }

    var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
    {
        Args = args,
        Configuration = configuration,
    });
    builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(60));
    // Orleans and its resilience pipelines log every placement at Information: only their warnings by default
    // (the mesh's own categories, Orleans.MoE.*, from Information).
    builder.Logging.AddFilter("Orleans", LogLevel.Warning).AddFilter("Polly", LogLevel.Warning).AddFilter("Orleans.MoE", LogLevel.Information);
    // Every line with its time (UTC), whichever console format the configuration picks, unless it sets one.
    builder.Services.Configure<SimpleConsoleFormatterOptions>(o =>
    {
        o.TimestampFormat ??= "yyyy-MM-dd HH:mm:ss.fff ";
        o.UseUtcTimestamp = true;
    });
    // JSON entries with their scopes: written inside a span, an entry carries its TraceId and SpanId.
    builder.Services.Configure<JsonConsoleFormatterOptions>(o =>
    {
        o.TimestampFormat ??= "yyyy-MM-ddTHH:mm:ss.fffZ";
        o.UseUtcTimestamp = true;
        o.IncludeScopes = true;
    });

    // Nothing is exported unless the OTEL_* variables name an OTLP endpoint.
    builder.Services.AddMeshTelemetry(builder.Configuration, "moe-silo");

    builder.UseOrleans(silo =>
    {
        SiloConfiguration.ApplyProviders(silo, builder.Configuration);
        silo.AddMoEMesh(builder.Configuration);
    });
    return builder.Build();
}

static TimeSpan StartRetryTime(IConfiguration configuration) =>
    configuration["Silo:StartRetryTime"] is not { Length: > 0 } text ? TimeSpan.FromMinutes(1)
    : TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var time) && time >= TimeSpan.Zero ? time
    : throw new SiloConfigurationException($"Silo:StartRetryTime '{text}' is not a time span (hh:mm:ss)");

static string? ConfigFile(string[] args)
{
    var index = Array.IndexOf(args, "--config");
    return index < 0 ? null
        : index + 1 < args.Length ? args[index + 1]
        : throw new SiloConfigurationException("--config needs a file name");
}
