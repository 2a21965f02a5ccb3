using System.CommandLine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.MoE.Api;
using Orleans.MoE.Api.Hosting;
using Orleans.MoE.Grains;
using Orleans.MoE.Grains.Hosting;

namespace Orleans.MoE.Cli.Commands;

/// <summary>
/// <c>moe serve</c>: the front end (OpenAI-compatible API, dashboard, metrics). By default it embeds a silo
/// serving the model in this same process; with <c>--gateway</c> it serves a running cluster as an
/// Orleans client through the silos' gateways.
/// </summary>
internal static class ServeCommand
{
    public const string DefaultUrl = "http://127.0.0.1:8000";

    public static Command Create()
    {
        var model = CommonOptions.Model();
        var urls = new Option<string>("--urls") { Description = $"Where to listen (default {DefaultUrl}; use http://0.0.0.0:PORT to accept other hosts)", DefaultValueFactory = _ => DefaultUrl };
        var apiKeys = new Option<string[]>("--api-key") { Description = "A Bearer key clients must send (repeatable; also Api__ApiKeys__0, ...); none: the API is open" };
        var config = new Option<string?>("--config") { Description = "A JSON settings file (sections Api, Mesh, Silo, Cluster, Logging)" };
        var device = CommonOptions.Device(null, "the experts of the silo in this process (default: Mesh:Device from --config, else cpu)");
        var logFormat = new Option<string>("--log-format") { Description = "Logs as 'text' or 'json' (one object per line, with the request id)", DefaultValueFactory = _ => "text" };
        logFormat.AcceptOnlyFromAmong("text", "json");
        var cluster = new ClusterConnection();
        var command = new Command("serve", "Serve the OpenAI-compatible API and the dashboard: the model in this process, or with --gateway a running cluster")
        {
            model, urls, apiKeys, config, device, logFormat,
        };
        foreach (var option in cluster.All)
        {
            command.Options.Add(option);
        }

        command.SetAction((result, cancellationToken) => ClusterConnection.RunAsync(async () =>
        {
            var builder = WebApplication.CreateSlimBuilder();
            if (result.GetValue(config) is { } file)
            {
                builder.Configuration.AddJsonFile(Path.GetFullPath(file), optional: false);
            }

            builder.WebHost.UseUrls(result.GetValue(urls)!);
            ConfigureLogging(builder.Logging, result.GetValue(logFormat) == "json");
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
            builder.Services.AddMoEApi(builder.Configuration, o => o.ApiKeys.AddRange(result.GetValue(apiKeys) ?? []));
            string what;
            if (ClusterConnection.Given(result, cluster))
            {
                if (result.GetValue(device) is not null)
                {
                    throw new ArgumentException("--device chooses what runs the experts of the silo in this process; with --gateway, set Mesh:Device on the cluster's silos");
                }

                builder.AddMeshClient(cluster.GatewayEndPoints(result), cluster.ClusterIdOf(result));
                what = $"the cluster at {string.Join(", ", result.GetValue(cluster.Gateways)!)}";
            }
            else
            {
                var directory = Path.GetFullPath(CommonOptions.ResolveModel(result.GetValue(model)));
                var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(directory));
                var chosen = result.GetValue(device);
                builder.AddEmbeddedMesh(new Dictionary<string, string> { [name] = directory }, mesh => mesh.Device = chosen ?? mesh.Device);
                what = $"{name} in this process";
            }

            await using var app = builder.Build();
            var keys = app.Services.GetRequiredService<IOptions<ApiOptions>>().Value.ApiKeys.Count; // Invalid settings fail here, with their reason.
            app.MapMoEApi();
            try
            {
                await app.StartAsync(cancellationToken);
            }
            catch (Exception e) when (ClusterConnection.Given(result, cluster) && MeshFaults.IsTransient(e))
            {
                throw MeshConnection.Unreachable(cluster.GatewayEndPoints(result), cluster.ClusterIdOf(result), e);
            }

            foreach (var url in app.Urls)
            {
                Console.WriteLine($"Orleans.MoE serving {what} at {url}  (dashboard {url}/, API {url}/v1, metrics {url}/metrics{(keys == 0 ? "; no API keys: open to anyone who can reach it" : "")})");
            }

            await app.WaitForShutdownAsync(cancellationToken);
            return 0;
        }));
        return command;
    }

    /// <summary>One line per entry with its scopes (the request id), or JSON; ASP.NET Core's per-request chatter only from warnings up.</summary>
    private static void ConfigureLogging(ILoggingBuilder logging, bool json)
    {
        logging.ClearProviders();
        // Orleans and its resilience pipelines log every placement at Information: only their warnings by default
        // (the mesh's own categories, Orleans.MoE.*, from Information).
        logging.AddFilter("Orleans", LogLevel.Warning).AddFilter("Polly", LogLevel.Warning).AddFilter("Orleans.MoE", LogLevel.Information);
        if (json)
        {
            logging.AddJsonConsole(o =>
            {
                o.IncludeScopes = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                o.UseUtcTimestamp = true;
            });
        }
        else
        {
            logging.AddSimpleConsole(o =>
            {
                o.IncludeScopes = true;
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss ";
            });
        }

        logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Warning);
    }
}
