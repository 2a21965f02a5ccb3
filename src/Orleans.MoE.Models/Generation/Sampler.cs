using System.Numerics.Tensors;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Generation;

/// <summary>Chooses tokens from logits by <see cref="SamplingOptions"/>; one per sequence (it owns the random generator).</summary>
public sealed class Sampler
{
    private readonly SamplingOptions _options;
    private readonly Random _random;

    public Sampler(SamplingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _random = options.Seed is { } seed ? new Random(seed) : new Random();
    }

    /// <summary>
    /// Advances the random generator past <paramref name="tokens"/> sampled tokens (one draw each), so a
    /// sequence resumed after its first <paramref name="tokens"/> tokens samples what it would have.
    /// </summary>
    public void Skip(int tokens)
    {
        if (_options.IsGreedy)
        {
            return;
        }

        for (var i = 0; i < tokens; i++)
        {
            _random.NextDouble();
        }
    }

    public int Next(ReadOnlySpan<float> logits)
    {
        if (_options.IsGreedy)
        {
            return TensorPrimitives.IndexOfMax(logits);
        }

        // Candidates sorted by logit, best first; ties keep the lower id first.
        var candidates = new int[logits.Length];
        for (var i = 0; i < candidates.Length; i++)
        {
            candidates[i] = i;
        }

        var scaled = new float[logits.Length];
        TensorPrimitives.Divide(logits, _options.Temperature, scaled);
        Array.Sort(candidates, (a, b) => scaled[b] != scaled[a] ? scaled[b].CompareTo(scaled[a]) : a.CompareTo(b));
        var count = _options.TopK > 0 ? Math.Min(_options.TopK, candidates.Length) : candidates.Length;

        var probabilities = new float[count];
        for (var i = 0; i < count; i++)
        {
            probabilities[i] = scaled[candidates[i]];
        }

        Activations.Softmax(probabilities, probabilities.Length);
        if (_options.TopP < 1)
        {
            // Keep the smallest prefix whose mass reaches top-p (at least one token).
            var mass = 0f;
            var kept = 0;
            while (kept < count && (kept == 0 || mass < _options.TopP))
            {
                mass += probabilities[kept++];
            }

            count = kept;
        }

        var total = 0f;
        for (var i = 0; i < count; i++)
        {
            total += probabilities[i];
        }

        var draw = (float)_random.NextDouble() * total;
        for (var i = 0; i < count; i++)
        {
            draw -= probabilities[i];
            if (draw < 0)
            {
                return candidates[i];
            }
        }

        return candidates[count - 1];
    }
}
