using System.Diagnostics;

namespace Orleans.MoE.Grains.Diagnostics;

/// <summary>
/// The names under which the mesh publishes its telemetry: one <see cref="System.Diagnostics.Metrics.Meter"/>
/// and one <see cref="ActivitySource"/>, both <see cref="Name"/>. Without a listener (no OpenTelemetry
/// provider subscribed, the default), starting a span returns null and costs a field read.
/// </summary>
public static class MeshTelemetry
{
    /// <summary>The meter's and the activity source's name.</summary>
    public const string Name = "Orleans.MoE";

    /// <summary>
    /// Orleans' activity sources for grain calls: with activity propagation, the spans that carry a trace
    /// between silos. Orleans counts grain interfaces in namespaces that begin with "Orleans" (the mesh's
    /// own: <c>Orleans.MoE.Grains</c>) as its runtime's: the mesh's grain calls are on the runtime source.
    /// </summary>
    public static readonly string[] OrleansSources = ["Microsoft.Orleans.Runtime", "Microsoft.Orleans.Application"];

    /// <summary>Orleans' meter (messaging, catalog, directory, ...).</summary>
    public const string OrleansMeter = "Microsoft.Orleans";

    /// <summary>The mesh's spans: scheduler steps, a gate's fan-out per layer, an expert batch to a silo and its execution there.</summary>
    public static ActivitySource Source { get; } = new(Name);

    /// <summary>
    /// A span for part of a sampled trace: only under a recorded <see cref="Activity.Current"/> (the gate's
    /// fan-out is traced for sampled steps, nothing is started for the others).
    /// </summary>
    public static Activity? StartChild(string name, ActivityKind kind = ActivityKind.Internal) =>
        Activity.Current is { Recorded: true } ? Source.StartActivity(name, kind) : null;
}
