using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Orleans.MoE.Grains.Status;
using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Catalog;
using Orleans.MoE.Grains.Cluster;

namespace Orleans.MoE.Api.Dashboard;

/// <summary>
/// Short names for silos (S1, S2, ...) in order of first sight, silos first seen together in address order
/// (host, then port: S2 is the second port), kept for the process's life so a name never moves to another silo.
/// </summary>
internal sealed class SiloNames
{
    private readonly ConcurrentDictionary<string, string> _names = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private int _next;

    /// <summary>Names <paramref name="silos"/> not named yet, in address order.</summary>
    public void See(IEnumerable<SiloAddress> silos)
    {
        lock (_lock)
        {
            foreach (var silo in SiloOrder.Sort(silos))
            {
                _ = Of(silo.ToString());
            }
        }
    }

    public string Of(string address) => _names.GetOrAdd(address, _ => $"S{Interlocked.Increment(ref _next)}");
}

/// <summary>The dashboard's picture of the mesh (<c>GET /api/mesh</c>): silos with their figures, experts per layer with their silos and load, recent events.</summary>
internal static class MeshView
{
    public static void Write(Utf8JsonWriter json, MeshSnapshot snapshot, SiloNames names, DateTimeOffset now)
    {
        names.See(snapshot.Silos.Select(s => s.Address));
        var silos = snapshot.Silos.OrderBy(s => names.Of(s.Address.ToString()).Length).ThenBy(s => names.Of(s.Address.ToString()), StringComparer.Ordinal).ToList();
        json.WriteStartObject();
        json.WriteString("time", now);
        json.WriteStartArray("silos");
        var shared = SharedHosts.Notes(silos);
        foreach (var silo in silos)
        {
            WriteSilo(json, silo, snapshot.Metrics.GetValueOrDefault(silo.Address.ToString()), names, shared.GetValueOrDefault(silo.Address));
        }

        json.WriteEndArray();
        json.WriteStartArray("models");
        foreach (var status in snapshot.Models)
        {
            var info = snapshot.ModelInfos.GetValueOrDefault(status.Model);
            json.WriteStartObject();
            json.WriteString("name", status.Model);
            json.WriteString("architecture", info?.Architecture ?? "");
            json.WriteStartArray("moe_layers");
            foreach (var layer in info?.MoeLayers ?? [])
            {
                json.WriteNumberValue(layer);
            }

            json.WriteEndArray();
            json.WriteNumber("experts", info?.Experts ?? 0);
            json.WriteNumber("top_k", info?.TopK ?? 0);
            json.WriteNumber("plan_version", status.Plan.Version);
            json.WriteStartArray("placement");
            var hosted = snapshot.Metrics.Values
                .SelectMany(m => m.HostedExperts.Select(e => (Key: ExpertKey.Parse(e.Key), Silo: names.Of(m.Silo), e.Tokens)))
                .Where(x => x.Key.Model == status.Model)
                .GroupBy(x => (x.Key.Layer, x.Key.Expert))
                .OrderBy(g => g.Key.Layer).ThenBy(g => g.Key.Expert);
            foreach (var expert in hosted)
            {
                json.WriteStartObject();
                json.WriteNumber("layer", expert.Key.Layer);
                json.WriteNumber("expert", expert.Key.Expert);
                json.WriteStartArray("replicas");
                foreach (var replica in expert.OrderBy(x => x.Key.Replica))
                {
                    json.WriteStartObject();
                    json.WriteString("silo", replica.Silo);
                    json.WriteNumber("tokens", replica.Tokens);
                    json.WriteEndObject();
                }

                json.WriteEndArray();
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteStartArray("events");
        var events = snapshot.Metrics.Values
            .SelectMany(m => m.RecentEvents.Select(e => (Silo: names.Of(m.Silo), Event: e)))
            .Select(e => (e.Silo, Time: EventTime(e.Event), Description: EventText(e.Event)))
            .OrderByDescending(e => e.Time).Take(50);
        foreach (var (silo, time, description) in events)
        {
            json.WriteStartObject();
            json.WriteString("time", time);
            json.WriteString("silo", silo);
            json.WriteString("description", description);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static void WriteSilo(Utf8JsonWriter json, SiloSummary silo, SiloMeshMetrics? metrics, SiloNames names, string? memoryNote)
    {
        var metadata = silo.Metadata;
        json.WriteStartObject();
        json.WriteString("name", names.Of(silo.Address.ToString()));
        json.WriteString("address", silo.Address.ToString());
        json.WriteBoolean("gpu", metadata.GetValueOrDefault(SiloMetadataKeys.Gpu) == "true");
        if (metadata.GetValueOrDefault(SiloMetadataKeys.Device) is { } device)
        {
            json.WriteString("device", device);
            json.WriteNumber("device_memory", Number(metadata.GetValueOrDefault(SiloMetadataKeys.DeviceMemory)));
            json.WriteNumber("device_memory_used", Number(metadata.GetValueOrDefault(SiloMetadataKeys.DeviceMemoryUsed)));
        }

        json.WriteNumber("activations", silo.Activations);
        json.WriteStartArray("models");
        foreach (var key in metadata.Keys.Where(k => k.StartsWith(SiloMetadataKeys.Model(""), StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            json.WriteStringValue(key[SiloMetadataKeys.Model("").Length..]);
        }

        json.WriteEndArray();
        json.WriteStartObject("refused");
        foreach (var (key, reason) in metadata.Where(k => k.Key.StartsWith(SiloMetadataKeys.ModelError(""), StringComparison.Ordinal)))
        {
            json.WriteString(key[SiloMetadataKeys.ModelError("").Length..], reason);
        }

        json.WriteEndObject();
        json.WriteNumber("experts", metrics?.Experts ?? 0);
        json.WriteNumber("expert_bytes", metrics?.ExpertBytes ?? 0);
        json.WriteNumber("expert_budget", metrics?.ExpertBudget ?? Number(metadata.GetValueOrDefault(SiloMetadataKeys.ExpertBudget)));
        if (memoryNote is not null)
        {
            json.WriteString("memory_note", memoryNote);
        }

        json.WriteNumber("queued_sequences", metrics?.QueuedSequences ?? 0);
        json.WriteNumber("tokens_generated", metrics?.TokensGenerated ?? 0);
        json.WriteNumber("dispatch_us_p50", Finite(metrics?.DispatchOverheadUsP50));
        json.WriteNumber("dispatch_us_p99", Finite(metrics?.DispatchOverheadUsP99));
        json.WriteNumber("ttft_ms_p50", Finite(metrics?.TimeToFirstTokenMsP50));
        json.WriteNumber("itl_ms_p50", Finite(metrics?.InterTokenMsP50));
        json.WriteNumber("expert_call_failures", metrics?.ExpertCallFailures ?? 0);
        json.WriteNumber("skipped_experts", metrics?.SkippedExperts ?? 0);
        json.WriteEndObject();
    }

    /// <summary>Silo metrics carry events as "ISO-time description".</summary>
    private static DateTimeOffset EventTime(string recent) =>
        DateTimeOffset.TryParse(recent.AsSpan(0, Math.Max(0, recent.IndexOf(' ', StringComparison.Ordinal))), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var time) ? time : DateTimeOffset.MinValue;

    private static string EventText(string recent) => recent.IndexOf(' ', StringComparison.Ordinal) is var space and >= 0 ? recent[(space + 1)..] : recent;

    private static double Finite(double? value) => value is { } v && double.IsFinite(v) ? Math.Round(v, 3) : 0;

    private static long Number(string? text) => long.TryParse(text, CultureInfo.InvariantCulture, out var n) ? n : 0;
}
