namespace Orleans.MoE.Grains.Gates;

/// <summary>
/// Opt-in: prefer latency to exactness. Experts that have not answered within the deadline are skipped
/// and each token's routing weights renormalised over the experts that answered, as long as at least
/// <see cref="MinExperts"/> of its experts did. Off by default (then a step waits for every expert).
/// </summary>
public sealed class DegradedModeOptions
{
    public bool Enabled { get; set; }

    public TimeSpan Deadline { get; set; } = TimeSpan.FromMilliseconds(250);

    public int MinExperts { get; set; } = 1;
}
