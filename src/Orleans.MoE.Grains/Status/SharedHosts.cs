using System.Globalization;
using Orleans.MoE.Grains.Catalog;
using Orleans.MoE.Grains.Cluster;

namespace Orleans.MoE.Grains.Status;

/// <summary>
/// Silos on one host share its memory, but each sizes its default expert budget (80 % of what the host
/// makes available) as if it were alone there. Says so, per host whose silos together claim more than it has.
/// </summary>
public static class SharedHosts
{
    /// <summary>A note per silo on an over-claimed host (the same note for each of that host's silos).</summary>
    public static IReadOnlyDictionary<SiloAddress, string> Notes(IEnumerable<SiloSummary> silos)
    {
        ArgumentNullException.ThrowIfNull(silos);
        var notes = new Dictionary<SiloAddress, string>();
        foreach (var host in silos.GroupBy(s => s.Address.Endpoint.Address).Where(g => g.Count() > 1))
        {
            var claimed = host.Sum(s => Number(s, SiloMetadataKeys.ExpertBudget));
            var memory = host.Max(s => Number(s, SiloMetadataKeys.HostMemory));
            if (memory > 0 && claimed > memory)
            {
                var note = string.Create(CultureInfo.InvariantCulture,
                    $"the {host.Count()} silos on {host.Key} together claim {GiB(claimed)} of expert memory on a host with {GiB(memory)}; they share it: give each its part with Mesh:ExpertMemoryBytes");
                foreach (var silo in host)
                {
                    notes[silo.Address] = note;
                }
            }
        }

        return notes;
    }

    private static long Number(SiloSummary silo, string key) =>
        long.TryParse(silo.Metadata.GetValueOrDefault(key), CultureInfo.InvariantCulture, out var n) ? n : 0;

    private static string GiB(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):F1} GiB");
}
