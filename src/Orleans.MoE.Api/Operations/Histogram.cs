using System.Globalization;
using System.Text;

namespace Orleans.MoE.Api.Operations;

/// <summary>A Prometheus histogram (seconds): cumulative bucket counts, sum and count.</summary>
internal sealed class Histogram(string name, string help, double[] bounds)
{
    private readonly long[] _buckets = new long[bounds.Length + 1];
    private readonly object _lock = new();
    private double _sum;
    private long _count;

    public void Observe(TimeSpan value)
    {
        var seconds = value.TotalSeconds;
        var bucket = Array.FindIndex(bounds, b => seconds <= b);
        lock (_lock)
        {
            _buckets[bucket < 0 ? bounds.Length : bucket]++;
            _sum += seconds;
            _count++;
        }
    }

    public void WriteTo(StringBuilder text)
    {
        lock (_lock)
        {
            Prometheus.Header(text, name, help, "histogram");
            long cumulative = 0;
            for (var i = 0; i < bounds.Length; i++)
            {
                cumulative += _buckets[i];
                text.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{le=\"{Prometheus.Number(bounds[i])}\"}} {cumulative}\n");
            }

            text.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{le=\"+Inf\"}} {_count}\n");
            text.Append(CultureInfo.InvariantCulture, $"{name}_sum {Prometheus.Number(_sum)}\n");
            text.Append(CultureInfo.InvariantCulture, $"{name}_count {_count}\n");
        }
    }
}

/// <summary>Prometheus text exposition format (version 0.0.4) helpers.</summary>
internal static class Prometheus
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    public static void Header(StringBuilder text, string name, string help, string type) =>
        text.Append(CultureInfo.InvariantCulture, $"# HELP {name} {help}\n# TYPE {name} {type}\n");

    /// <summary>One sample; <paramref name="labels"/> are name/value pairs (values escaped).</summary>
    public static void Sample(StringBuilder text, string name, double value, params (string Name, string Value)[] labels)
    {
        text.Append(name);
        if (labels.Length > 0)
        {
            text.Append('{').AppendJoin(',', labels.Select(l => $"{l.Name}=\"{Escape(l.Value)}\"")).Append('}');
        }

        text.Append(' ').Append(Number(value)).Append('\n');
    }

    public static string Number(double value) =>
        double.IsNaN(value) ? "NaN" : double.IsPositiveInfinity(value) ? "+Inf" : double.IsNegativeInfinity(value) ? "-Inf" : value.ToString("R", CultureInfo.InvariantCulture);

    private static string Escape(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
