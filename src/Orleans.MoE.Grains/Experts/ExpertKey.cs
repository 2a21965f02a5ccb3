using System.Globalization;

namespace Orleans.MoE.Grains.Experts;

/// <summary>One activation of one expert: model, layer, expert index and replica index (0 unless replicated).</summary>
public readonly record struct ExpertKey(string Model, int Layer, int Expert, int Replica = 0)
{
    /// <summary>The expert grain's key: "model/layer/expert/replica".</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Model}/{Layer}/{Expert}/{Replica}");

    /// <summary>The same expert, replica 0 (load is counted per expert, over its replicas).</summary>
    public ExpertKey Primary => this with { Replica = 0 };

    public static ExpertKey Parse(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var parts = key.Split('/');
        return parts.Length == 4
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var layer)
            && int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var expert)
            && int.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out var replica)
            ? new ExpertKey(parts[0], layer, expert, replica)
            : throw new FormatException($"'{key}' is not an expert key (model/layer/expert/replica)");
    }
}
