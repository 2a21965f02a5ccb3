using System.Diagnostics;
using System.Globalization;
using OpenTelemetry.Trace;

namespace Orleans.MoE.Grains.Diagnostics;

/// <summary>
/// Which traces are kept. A span with a parent follows its parent's decision (the request's trace goes on
/// through the silos or not at all). A root span is sampled by <c>OTEL_TRACES_SAMPLER</c> and
/// <c>OTEL_TRACES_SAMPLER_ARG</c> (always_on, the default; always_off; traceidratio or
/// parentbased_traceidratio with a ratio), except Orleans' grain calls that no request made: with activity
/// propagation Orleans starts a span for every grain call, and the ones nobody traced (membership probes,
/// the balancer's rounds, directory lookups) would each be a trace of their own.
/// </summary>
public sealed class MeshSampler(Sampler root) : Sampler
{
    /// <summary>The root sampler the standard variables describe.</summary>
    public static MeshSampler FromSettings(string? sampler, string? argument)
    {
        var ratio = double.TryParse(argument, NumberStyles.Float, CultureInfo.InvariantCulture, out var r) && r is >= 0 and <= 1 ? r : 1.0;
        Sampler root = sampler?.ToLowerInvariant() switch
        {
            "always_off" or "parentbased_always_off" => new AlwaysOffSampler(),
            "traceidratio" or "parentbased_traceidratio" => new TraceIdRatioBasedSampler(ratio),
            _ => new AlwaysOnSampler(),
        };
        return new MeshSampler(root);
    }

    public override SamplingResult ShouldSample(in SamplingParameters samplingParameters)
    {
        var parent = samplingParameters.ParentContext;
        if (parent.TraceId != default)
        {
            return new SamplingResult((parent.TraceFlags & ActivityTraceFlags.Recorded) != 0);
        }

        return IsGrainCall(samplingParameters.Name, samplingParameters.Kind) ? new SamplingResult(false) : root.ShouldSample(samplingParameters);
    }

    /// <summary>Orleans names a grain call's span "IInterface/Method" (client and server side).</summary>
    private static bool IsGrainCall(string name, ActivityKind kind) =>
        kind is ActivityKind.Client or ActivityKind.Server && name.Length > 2 && name[0] == 'I' && name.IndexOf('/', StringComparison.Ordinal) > 1 && !name.Contains(' ', StringComparison.Ordinal);
}
