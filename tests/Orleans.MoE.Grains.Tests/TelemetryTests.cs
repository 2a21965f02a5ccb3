using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Orleans.MoE.Grains.Diagnostics;
using Orleans.MoE.Grains.Hosting;

namespace Orleans.MoE.Grains.Tests;

/// <summary>What a host exports (nothing unless the OTEL_* settings name an endpoint) and which traces are kept.</summary>
public sealed class TelemetryTests
{
    [Fact]
    public void A_host_without_otlp_settings_collects_and_exports_nothing()
    {
        using var services = Host(new Dictionary<string, string?>());

        Assert.Null(services.GetService<TracerProvider>());
        Assert.Null(services.GetService<MeterProvider>());
    }

    [Fact]
    public void An_otlp_endpoint_exports_traces_and_metrics_and_a_signal_can_be_left_out()
    {
        using var both = Host(new Dictionary<string, string?> { ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:4317" });
        using var metricsOnly = Host(new Dictionary<string, string?> { ["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] = "http://127.0.0.1:4318/v1/metrics" });
        using var tracesOff = Host(new Dictionary<string, string?> { ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:4317", ["OTEL_TRACES_EXPORTER"] = "none" });

        Assert.NotNull(both.GetService<TracerProvider>());
        Assert.NotNull(both.GetService<MeterProvider>());
        Assert.Null(metricsOnly.GetService<TracerProvider>());
        Assert.NotNull(metricsOnly.GetService<MeterProvider>());
        Assert.Null(tracesOff.GetService<TracerProvider>());
        Assert.NotNull(tracesOff.GetService<MeterProvider>());
    }

    [Fact]
    public void Children_follow_their_parent_and_grain_calls_no_request_made_start_no_trace()
    {
        var sampler = MeshSampler.FromSettings(null, null);
        var sampled = new ActivityContext(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded);
        var dropped = new ActivityContext(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.None);

        Assert.Equal(SamplingDecision.RecordAndSample, Decide(sampler, default, "POST /v1/completions", ActivityKind.Server));
        Assert.Equal(SamplingDecision.Drop, Decide(sampler, default, "IMeshPlanGrain/GetPlanAsync", ActivityKind.Client));
        Assert.Equal(SamplingDecision.Drop, Decide(sampler, default, "IMembershipService/Ping", ActivityKind.Server));
        Assert.Equal(SamplingDecision.RecordAndSample, Decide(sampler, sampled, "IGenerationGrain/StartAsync", ActivityKind.Client));
        Assert.Equal(SamplingDecision.Drop, Decide(sampler, dropped, "moe.scheduler.step", ActivityKind.Internal));
        Assert.Equal(SamplingDecision.Drop, Decide(MeshSampler.FromSettings("parentbased_traceidratio", "0"), default, "POST /v1/completions", ActivityKind.Server));
        Assert.Equal(SamplingDecision.RecordAndSample, Decide(MeshSampler.FromSettings("parentbased_traceidratio", "0"), sampled, "moe.scheduler.step", ActivityKind.Internal));
        Assert.Equal(SamplingDecision.Drop, Decide(MeshSampler.FromSettings("always_off", null), default, "POST /v1/completions", ActivityKind.Server));
    }

    private static SamplingDecision Decide(Sampler sampler, ActivityContext parent, string name, ActivityKind kind) =>
        sampler.ShouldSample(new SamplingParameters(parent, parent == default ? ActivityTraceId.CreateRandom() : parent.TraceId, name, kind)).Decision;

    private static ServiceProvider Host(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddLogging();
        services.AddMeshTelemetry(configuration, "moe-silo");
        return services.BuildServiceProvider();
    }
}
