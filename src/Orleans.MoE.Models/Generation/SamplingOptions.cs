namespace Orleans.MoE.Models.Generation;

/// <summary>
/// How the next token is chosen. Temperature 0 is greedy (argmax); otherwise logits are divided by the
/// temperature, cut to the top-k, then to the smallest set whose probability reaches top-p, and sampled
/// from a generator seeded by <see cref="Seed"/> (the reference's processor order).
/// </summary>
public sealed record SamplingOptions
{
    public static SamplingOptions Greedy { get; } = new();

    public float Temperature { get; init; }

    /// <summary>Keep only the k most likely tokens; 0 keeps all.</summary>
    public int TopK { get; init; }

    /// <summary>Nucleus sampling threshold in (0, 1]; 1 keeps all.</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Seed for reproducible sampling; null draws one.</summary>
    public int? Seed { get; init; }

    public bool IsGreedy => Temperature == 0;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the invalid setting.</summary>
    public void Validate()
    {
        if (float.IsNaN(Temperature) || Temperature < 0 || float.IsInfinity(Temperature))
        {
            throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "temperature must be a finite number ≥ 0");
        }

        if (TopK < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(TopK), TopK, "top-k must be ≥ 0");
        }

        if (float.IsNaN(TopP) || TopP <= 0 || TopP > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(TopP), TopP, "top-p must be in (0, 1]");
        }
    }
}
