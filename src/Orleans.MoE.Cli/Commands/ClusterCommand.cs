using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Orleans.MoE.Grains.Status;
using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Catalog;
using Orleans.MoE.Grains.Placement;
using Orleans.MoE.Grains.Cluster;

namespace Orleans.MoE.Cli.Commands;

/// <summary><c>moe cluster status</c>: the silos of a running cluster, where each expert lives and its load.</summary>
internal static class ClusterCommand
{
    private static readonly JsonSerializerOptions s_json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static Command Create()
    {
        var command = new Command("cluster", "Inspect a running cluster");
        command.Subcommands.Add(Status());
        return command;
    }

    private static Command Status()
    {
        var cluster = new ClusterConnection();
        var model = new Option<string?>("--model", "-m") { Description = "Only this model (default: every model the mesh serves)" };
        var json = CommonOptions.Json();
        var command = new Command("status", "Silos, where each expert lives and its load (tokens over the balancer's window)") { model, json };
        foreach (var option in cluster.All)
        {
            command.Options.Add(option);
        }

        command.SetAction((result, cancellationToken) => ClusterConnection.RunAsync(async () =>
        {
            await using var client = await cluster.ConnectAsync(result, cancellationToken);
            var snapshot = await MeshSnapshot.ReadAsync(client.GrainFactory, result.GetValue(model));
            if (result.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(Json(snapshot.Silos, snapshot.Models, snapshot.Metrics), s_json));
                return 0;
            }

            Console.Write(Render(snapshot.Silos, snapshot.Models, snapshot.Metrics));
            return 0;
        }));
        return command;
    }

    /// <summary>The status as JSON-friendly objects (silo addresses as text).</summary>
    private static object Json(IReadOnlyList<SiloSummary> silos, IReadOnlyList<MeshStatus> statuses, IReadOnlyDictionary<string, SiloMeshMetrics> metrics) => new
    {
        Silos = silos.Select(s => new { Address = s.Address.ToString(), s.Metadata, s.Activations, Mesh = metrics.GetValueOrDefault(s.Address.ToString()) }),
        Models = statuses.Select(m => new
        {
            m.Model,
            m.Fingerprint,
            PlanVersion = m.Plan.Version,
            Plan = m.Plan.Experts.Select(p => new { p.Layer, p.Expert, p.Replica, Silo = p.Silo.ToString() }),
            Silos = m.Silos.Select(r => new { Silo = r.Silo.ToString(), r.Budget, r.Free, Experts = r.Experts.Select(e => new { e.Key, e.Tokens }) }),
            Refused = m.RejectedSilos,
            m.HistoryRounds,
        }),
    };

    /// <summary>Per-layer dispatch overhead, or that there is none yet (a silo whose gates sent nothing to other silos).</summary>
    private static string Dispatch(SiloMeshMetrics m) =>
        double.IsNaN(m.DispatchOverheadUsP50)
            ? "overhead not measured yet (no step of this silo sent experts to other silos)"
            : string.Create(CultureInfo.InvariantCulture, $"p50 {m.DispatchOverheadUsP50:F0} µs p99 {m.DispatchOverheadUsP99:F0} µs");

    /// <summary>The status as text: a line per silo, then per model a grid of layers × experts naming each expert's silo(s) and load.</summary>
    internal static string Render(IReadOnlyList<SiloSummary> silos, IReadOnlyList<MeshStatus> statuses, IReadOnlyDictionary<string, SiloMeshMetrics> metrics)
    {
        var text = new System.Text.StringBuilder();
        var ordered = SiloOrder.Sort(silos.Select(s => s.Address)).Select(a => silos.First(s => s.Address.Equals(a))).ToList();
        var index = ordered.Select((s, i) => (s.Address, i)).ToDictionary(x => x.Address, x => $"S{x.i + 1}");
        text.AppendLine(CultureInfo.InvariantCulture, $"{silos.Count} silo(s):");
        foreach (var silo in ordered)
        {
            var metadata = silo.Metadata;
            var models = string.Join(",", metadata.Keys.Where(k => k.StartsWith("model.", StringComparison.Ordinal)).Select(k => k[6..]));
            text.AppendLine(CultureInfo.InvariantCulture,
                $"  {index[silo.Address]}  {silo.Address}  activations {silo.Activations}  expert memory free {Bytes(metadata.GetValueOrDefault(SiloMetadataKeys.MemoryFree))} of {Bytes(metadata.GetValueOrDefault(SiloMetadataKeys.ExpertBudget))}  gpu {(metadata.GetValueOrDefault(SiloMetadataKeys.Gpu) == "true" ? "yes" : "no")}  models {(models.Length == 0 ? "(none)" : models)}");
            if (metadata.GetValueOrDefault(SiloMetadataKeys.Device) is { } device)
            {
                text.AppendLine(CultureInfo.InvariantCulture,
                    $"      device {device}  memory used {Bytes(metadata.GetValueOrDefault(SiloMetadataKeys.DeviceMemoryUsed))} of {Bytes(metadata.GetValueOrDefault(SiloMetadataKeys.DeviceMemory))}");
            }

            foreach (var (key, reason) in metadata.Where(k => k.Key.StartsWith("model-error.", StringComparison.Ordinal)))
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"      cannot serve {key["model-error.".Length..]}: {reason}");
            }

            if (metrics.TryGetValue(silo.Address.ToString(), out var m))
            {
                text.AppendLine(CultureInfo.InvariantCulture,
                    $"      experts {m.Experts}  sequences queued {m.QueuedSequences}  tokens {m.TokensGenerated}  dispatch {Dispatch(m)}  expert calls retried {m.ExpertCallFailures}  experts skipped {m.SkippedExperts}");
                foreach (var recent in m.RecentEvents.TakeLast(3))
                {
                    text.AppendLine(CultureInfo.InvariantCulture, $"      {recent}");
                }
            }
        }

        foreach (var note in SharedHosts.Notes(ordered).Values.Distinct())
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  note: {note}");
        }

        foreach (var status in statuses)
        {
            text.AppendLine();
            text.AppendLine(CultureInfo.InvariantCulture, $"model {status.Model}  fingerprint {status.Fingerprint ?? "?"}  plan v{status.Plan.Version}  {status.HistoryRounds} load rounds kept");
            foreach (var (silo, reason) in status.RejectedSilos)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"  refused {silo}: {reason}");
            }

            var where = status.Silos
                .SelectMany(r => r.Experts.Select(e => (Key: ExpertKey.Parse(e.Key), r.Silo, e.Tokens)))
                .GroupBy(x => (x.Key.Layer, x.Key.Expert))
                .ToDictionary(g => g.Key, g => string.Join("+", g.Select(x => $"{index.GetValueOrDefault(x.Silo, "?")}:{x.Tokens}")));
            foreach (var layer in where.Keys.Select(k => k.Layer).Distinct().Order())
            {
                var experts = where.Keys.Where(k => k.Layer == layer).Select(k => k.Expert).Order();
                text.AppendLine(CultureInfo.InvariantCulture, $"  layer {layer}: {string.Join("  ", experts.Select(e => $"e{e}={where[(layer, e)]}"))}");
            }
        }

        return text.ToString();
    }

    private static string Bytes(string? value) =>
        long.TryParse(value, CultureInfo.InvariantCulture, out var bytes)
            ? bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):F1} GiB" : $"{bytes / (double)(1L << 20):F1} MiB"
            : "?";
}
