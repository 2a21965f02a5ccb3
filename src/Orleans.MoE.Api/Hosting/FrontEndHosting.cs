using System.Net;
using Orleans.Dashboard;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Orleans.MoE.Api.Dashboard;
using Orleans.MoE.Api.Operations;
using Orleans.MoE.Api.Protection;
using Orleans.MoE.Api.Serving;
using Orleans.MoE.Grains;
using Orleans.MoE.Grains.Hosting;

namespace Orleans.MoE.Api.Hosting;

/// <summary>
/// Builds the front end into an ASP.NET Core application: <c>AddMoEApi</c> for its services, then either
/// <c>AddEmbeddedMesh</c> (an Orleans silo in this process: the one-process default) or <c>AddMeshClient</c>
/// (an Orleans client of a running cluster), then <c>app.MapMoEApi()</c>.
/// </summary>
public static class FrontEndHosting
{
    /// <summary>
    /// The front end's services; options from the "Api" section of <paramref name="configuration"/>, then
    /// <paramref name="configure"/>. Its telemetry (<see cref="MeshTelemetryHosting.AddMeshTelemetry"/>): metrics
    /// for <c>/metrics</c> always (with ASP.NET Core's), traces and OTLP export as the <c>OTEL_*</c> settings
    /// of <paramref name="configuration"/> (else the environment) say, each request a trace from ASP.NET Core's span.
    /// </summary>
    public static IServiceCollection AddMoEApi(this IServiceCollection services, IConfiguration? configuration = null, Action<ApiOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<ApiOptions>();
        if (configuration is not null)
        {
            options.Bind(configuration.GetSection("Api"));
        }

        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ApiOptions>, ApiOptionsValidator>());
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<ApiOptions>>((kestrel, api) => kestrel.Limits.MaxRequestBodySize = api.Value.MaxRequestBodyBytes);
        services.TryAddSingleton<ApiMetrics>();
        services.TryAddSingleton<MeshInstruments>();
        services.AddMeshTelemetry(configuration ?? new ConfigurationBuilder().AddEnvironmentVariables().Build(), "orleans-moe",
            metrics => metrics.AddPrometheusExporter(), hostMeters: ["Microsoft.AspNetCore"], // ASP.NET Core's meters: Hosting (http.server.*), Kestrel, Routing, ...
            tracing: tracing => tracing.AddAspNetCoreInstrumentation());
        services.TryAddSingleton<ApiKeys>();
        services.TryAddSingleton<ConcurrencyLimits>();
        services.TryAddSingleton<ModelCatalog>();
        services.TryAddSingleton<CompletionService>();
        services.TryAddSingleton<MeshSnapshots>();
        services.TryAddSingleton<SiloNames>();
        return services;
    }

    /// <summary>
    /// An Orleans silo in this process serving <paramref name="models"/> (name → directory): a cluster of its
    /// own (localhost clustering on loopback, free ports unless "Silo:Port" / "Silo:GatewayPort" say
    /// otherwise) with the plan in memory; the "Cluster" and "Mesh" sections apply as for <c>moe-silo</c>.
    /// </summary>
    public static WebApplicationBuilder AddEmbeddedMesh(this WebApplicationBuilder builder, IReadOnlyDictionary<string, string> models, Action<MeshOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(models);
        builder.Services.AddSingleton<OrleansDashboardServices>();
        builder.UseOrleans(silo =>
        {
            silo.UseLocalCluster(builder.Configuration);
            silo.AddMemoryGrainStorage(MeshStorage.Name);
            silo.AddMoEMesh(builder.Configuration, mesh =>
            {
                foreach (var (name, directory) in models)
                {
                    mesh.Models[name] = directory;
                }

                configure?.Invoke(mesh);
            });
        });
        return builder;
    }

    /// <summary>
    /// An Orleans client of a running cluster, through <paramref name="gateways"/> (connected when the
    /// application starts, closed when it stops), with mutual TLS when the "Tls" section names a certificate.
    /// </summary>
    public static WebApplicationBuilder AddMeshClient(this WebApplicationBuilder builder, IReadOnlyList<IPEndPoint> gateways, string clusterId)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var tls = MeshTls.FromConfiguration(builder.Configuration);
        builder.Services.AddSingleton<OrleansDashboardServices>();
        builder.UseOrleansClient(client => client.UseMeshGateways(gateways, clusterId, tls: tls).AddDashboard());
        return builder;
    }
}

/// <summary>Present when the host registered Orleans' dashboard services (a mesh silo or client built here), so the front end maps <c>/orleans</c>.</summary>
internal sealed class OrleansDashboardServices;
