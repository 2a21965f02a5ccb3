using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Layers;

/// <summary>
/// Chooses a token's experts and their weights from its router logits (length = experts).
/// Writes k expert indices and their weights.
/// </summary>
public delegate void RoutingRule(Span<float> routerLogits, Span<int> experts, Span<float> weights);

/// <summary>The routing rules of the architecture families, one small function each.</summary>
public static class Routing
{
    /// <summary>
    /// Softmax over all experts, keep the top k, optionally renormalise the kept probabilities to
    /// sum to one (Mixtral always; Qwen2/3-MoE and OLMoE when norm_topk_prob).
    /// </summary>
    public static RoutingRule SoftmaxTopK(bool normalize) => new SoftmaxTopKScheme(normalize).Route;

    /// <summary>
    /// DeepSeek-V3's rule: sigmoid scores; selection uses scores + <paramref name="correctionBias"/>,
    /// limited to the <paramref name="topKGroups"/> groups (of <paramref name="groups"/>) whose two best
    /// biased scores sum highest (experts outside them score 0, as in the reference); the weights
    /// are the unbiased scores of the chosen experts, optionally renormalised (+1e-20), times
    /// <paramref name="scalingFactor"/>.
    /// </summary>
    public static RoutingRule SigmoidGroupLimitedTopK(float[]? correctionBias, int groups, int topKGroups, bool normalize, float scalingFactor) =>
        new SigmoidGroupLimitedTopKScheme(correctionBias, groups, topKGroups, normalize, scalingFactor).Route;

    /// <summary>The scheme and parameters of a rule made here (for backends that route elsewhere), or null for any other rule.</summary>
    public static RoutingScheme? Describe(RoutingRule rule) => rule?.Target as RoutingScheme;
}

/// <summary>A routing rule as data: the scheme and its parameters; <see cref="Route"/> is the rule itself.</summary>
public abstract record RoutingScheme
{
    public abstract void Route(Span<float> routerLogits, Span<int> experts, Span<float> weights);
}

/// <summary>See <see cref="Routing.SoftmaxTopK"/>.</summary>
public sealed record SoftmaxTopKScheme(bool Normalize) : RoutingScheme
{
    public override void Route(Span<float> routerLogits, Span<int> experts, Span<float> weights)
    {
        Span<float> probabilities = stackalloc float[routerLogits.Length];
        routerLogits.CopyTo(probabilities);
        Activations.Softmax(probabilities, probabilities.Length);
        TopK.Select(probabilities, experts);
        var sum = 0f;
        for (var i = 0; i < experts.Length; i++)
        {
            weights[i] = probabilities[experts[i]];
            sum += weights[i];
        }

        if (Normalize)
        {
            for (var i = 0; i < experts.Length; i++)
            {
                weights[i] /= sum;
            }
        }
    }
}

/// <summary>See <see cref="Routing.SigmoidGroupLimitedTopK"/>.</summary>
public sealed record SigmoidGroupLimitedTopKScheme(float[]? CorrectionBias, int Groups, int TopKGroups, bool Normalize, float ScalingFactor) : RoutingScheme
{
    public override void Route(Span<float> routerLogits, Span<int> experts, Span<float> weights)
    {
        var count = routerLogits.Length;
        if (Groups <= 0 || count % Groups != 0 || TopKGroups > Groups)
        {
            throw new InvalidOperationException($"{count} experts cannot form {Groups} groups with top {TopKGroups}");
        }

        Span<float> scores = stackalloc float[count];
        routerLogits.CopyTo(scores);
        Activations.Sigmoid(scores);
        Span<float> choice = stackalloc float[count];
        for (var e = 0; e < count; e++)
        {
            choice[e] = scores[e] + (CorrectionBias?[e] ?? 0f);
        }

        var perGroup = count / Groups;
        if (Groups > 1)
        {
            Span<float> groupScores = stackalloc float[Groups];
            Span<int> best = stackalloc int[Math.Min(2, perGroup)];
            for (var g = 0; g < Groups; g++)
            {
                var slice = choice.Slice(g * perGroup, perGroup);
                TopK.Select(slice, best);
                groupScores[g] = 0;
                foreach (var b in best)
                {
                    groupScores[g] += slice[b];
                }
            }

            Span<int> keptGroups = stackalloc int[TopKGroups];
            TopK.Select(groupScores, keptGroups);
            for (var g = 0; g < Groups; g++)
            {
                if (!keptGroups.Contains(g))
                {
                    choice.Slice(g * perGroup, perGroup).Clear();
                }
            }
        }

        TopK.Select(choice, experts);
        var sum = 0f;
        for (var i = 0; i < experts.Length; i++)
        {
            weights[i] = scores[experts[i]];
            sum += weights[i];
        }

        for (var i = 0; i < experts.Length; i++)
        {
            weights[i] = (Normalize ? weights[i] / (sum + 1e-20f) : weights[i]) * ScalingFactor;
        }
    }
}
