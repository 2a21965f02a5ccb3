using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Orleans.MoE.Grains.Diagnostics;

namespace Orleans.MoE.Grains.Hosting;

/// <summary>
/// What a host (<c>moe-silo</c>, <c>moe serve</c>) exports, through OpenTelemetry: nothing unless the standard
/// <c>OTEL_*</c> variables name an OTLP endpoint (<c>OTEL_EXPORTER_OTLP_ENDPOINT</c>, or the per-signal
/// <c>OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT</c>; <c>OTEL_{TRACES,METRICS,LOGS}_EXPORTER=none</c>
/// turns a signal off), then traces (the mesh's spans and Orleans' grain calls), metrics (the mesh's meter,
/// Orleans', the .NET runtime's) and logs go there. Traces are sampled by <see cref="MeshSampler"/>
/// (<c>OTEL_TRACES_SAMPLER</c>, <c>OTEL_TRACES_SAMPLER_ARG</c>); the exporter reads the other variables itself
/// (<c>OTEL_EXPORTER_OTLP_PROTOCOL</c>, <c>_HEADERS</c>, <c>OTEL_SERVICE_NAME</c>, <c>OTEL_RESOURCE_ATTRIBUTES</c>, ...).
/// Log entries written inside a span carry its trace and span ids as a scope (the JSON console format
/// shows them with <c>IncludeScopes</c>).
/// </summary>
public static class MeshTelemetryHosting
{
    private static readonly string[] s_meters = [MeshTelemetry.Name, MeshTelemetry.OrleansMeter];

    /// <summary>
    /// Registers OpenTelemetry for this host under <paramref name="serviceName"/> (unless <c>OTEL_SERVICE_NAME</c>
    /// names it). <paramref name="metrics"/>, when given, makes metrics collected whatever the variables say
    /// (the front end serves them at <c>/metrics</c>) and adds its readers; <paramref name="hostMeters"/> are
    /// more meters (or name prefixes) of this host's own; <paramref name="tracing"/> adds sources to traces
    /// when they are exported.
    /// </summary>
    public static IServiceCollection AddMeshTelemetry(this IServiceCollection services, IConfiguration configuration, string serviceName,
        Action<MeterProviderBuilder>? metrics = null, IEnumerable<string>? hostMeters = null, Action<TracerProviderBuilder>? tracing = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.Configure<LoggerFactoryOptions>(o => o.ActivityTrackingOptions |= ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId | ActivityTrackingOptions.ParentId);
        var telemetry = services.AddOpenTelemetry().ConfigureResource(resource =>
        {
            if (Setting(configuration, "OTEL_SERVICE_NAME") is null)
            {
                resource.AddService(serviceName);
            }
        });
        var otlpMetrics = Exported(configuration, "METRICS");
        if (metrics is not null || otlpMetrics)
        {
            // The mesh's, Orleans' (and the host's) meters as this host's container made them (MeterScope.Local):
            // hosts sharing a process (tests, benchmarks) each export their own, and one host's shutdown ends
            // none of the others' series. The runtime's meter is the process's.
            services.AddMetrics(rules =>
            {
                foreach (var meter in hostMeters is null ? s_meters : s_meters.Concat(hostMeters))
                {
                    rules.EnableMetrics(meter, scopes: MeterScope.Local);
                }
            });
            telemetry.WithMetrics(m =>
            {
                m.AddRuntimeInstrumentation();
                metrics?.Invoke(m);
                if (otlpMetrics)
                {
                    m.AddOtlpExporter();
                }
            });
        }

        if (Exported(configuration, "TRACES"))
        {
            telemetry.WithTracing(t =>
            {
                t.AddSource(MeshTelemetry.Name).AddSource(MeshTelemetry.OrleansSources)
                    .SetSampler(MeshSampler.FromSettings(Setting(configuration, "OTEL_TRACES_SAMPLER"), Setting(configuration, "OTEL_TRACES_SAMPLER_ARG")));
                tracing?.Invoke(t);
                t.AddOtlpExporter();
            });
        }

        if (Exported(configuration, "LOGS"))
        {
            telemetry.WithLogging(l => l.AddOtlpExporter());
        }

        return services;
    }

    /// <summary>Whether <paramref name="signal"/> (TRACES, METRICS, LOGS) goes to an OTLP endpoint: one is named and the signal's exporter is not "none".</summary>
    private static bool Exported(IConfiguration configuration, string signal) =>
        (Setting(configuration, "OTEL_EXPORTER_OTLP_ENDPOINT") ?? Setting(configuration, $"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")) is not null
        && !string.Equals(Setting(configuration, $"OTEL_{signal}_EXPORTER"), "none", StringComparison.OrdinalIgnoreCase);

    private static string? Setting(IConfiguration configuration, string key) => configuration[key] is { Length: > 0 } value ? value : null;
}
