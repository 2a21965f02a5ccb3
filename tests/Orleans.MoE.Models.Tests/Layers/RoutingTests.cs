using Orleans.MoE.Models.Layers;

namespace Orleans.MoE.Models.Tests.Layers;

/// <summary>The routing rules against expectations worked out by hand (the arithmetic is in the comments).</summary>
public sealed class RoutingTests
{
    private static (int[] Experts, float[] Weights) Route(RoutingRule rule, float[] logits, int k)
    {
        var experts = new int[k];
        var weights = new float[k];
        var copy = logits.ToArray();
        rule(copy, experts, weights);
        return (experts, weights);
    }

    private static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    private static void AssertWeights(double[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-6 * Math.Max(1, Math.Abs(expected[i])), $"weight {i}: expected {expected[i]}, got {actual[i]}");
        }
    }

    [Fact]
    public void Softmax_top_k_without_normalisation_keeps_the_probabilities()
    {
        // softmax([0.1, 2, -1, 1.5]): the denominator is e^0.1 + e^2 + e^-1 + e^1.5.
        var denominator = Math.Exp(0.1) + Math.Exp(2) + Math.Exp(-1) + Math.Exp(1.5);
        var (experts, weights) = Route(Routing.SoftmaxTopK(normalize: false), [0.1f, 2f, -1f, 1.5f], 2);
        Assert.Equal([1, 3], experts);
        AssertWeights([Math.Exp(2) / denominator, Math.Exp(1.5) / denominator], weights);
    }

    [Fact]
    public void Softmax_top_k_with_normalisation_renormalises_the_kept_probabilities()
    {
        // The softmax denominator cancels: w = e^2 / (e^2 + e^1.5) = sigmoid(0.5).
        var (experts, weights) = Route(Routing.SoftmaxTopK(normalize: true), [0.1f, 2f, -1f, 1.5f], 2);
        Assert.Equal([1, 3], experts);
        AssertWeights([Sigmoid(0.5), Sigmoid(-0.5)], weights);
    }

    [Fact]
    public void Softmax_top_k_with_equal_logits_takes_the_lowest_experts()
    {
        var (experts, weights) = Route(Routing.SoftmaxTopK(normalize: false), [3f, 3f, 3f, 3f], 2);
        Assert.Equal([0, 1], experts);
        AssertWeights([0.25, 0.25], weights);

        (experts, weights) = Route(Routing.SoftmaxTopK(normalize: true), [3f, 3f, 3f, 3f], 2);
        Assert.Equal([0, 1], experts);
        AssertWeights([0.5, 0.5], weights);
    }

    [Fact]
    public void Softmax_top_k_leaves_the_logits_alone_and_survives_large_ones()
    {
        float[] logits = [1000f, 999f, -1000f];
        var copy = logits.ToArray();
        var experts = new int[1];
        var weights = new float[1];
        Routing.SoftmaxTopK(normalize: false)(copy, experts, weights);
        Assert.Equal(logits, copy);
        Assert.Equal(0, experts[0]);
        AssertWeights([1 / (1 + Math.Exp(-1))], weights);
    }

    [Fact]
    public void Sigmoid_routing_without_bias_picks_the_best_experts_of_the_best_groups()
    {
        // 8 experts in 4 groups of 2, 2 groups kept. Group scores (sum of the two best sigmoids):
        // g0 = σ(2) + σ(1) = 1.612, g1 = 2σ(0) = 1.0, g2 = 2σ(-1) = 0.538, g3 = σ(1.5) + σ(0.5) = 1.440.
        // Kept: g0, g3; the best two of experts {0, 1, 6, 7} are 0 (σ(2)) and 6 (σ(1.5)).
        var rule = Routing.SigmoidGroupLimitedTopK(null, groups: 4, topKGroups: 2, normalize: false, scalingFactor: 1f);
        var (experts, weights) = Route(rule, [2f, 1f, 0f, 0f, -1f, -1f, 1.5f, 0.5f], 2);
        Assert.Equal([0, 6], experts);
        AssertWeights([Sigmoid(2), Sigmoid(1.5)], weights);
    }

    [Fact]
    public void The_correction_bias_changes_the_chosen_experts_but_not_the_weights()
    {
        // Same logits, bias +1 on group 2: its biased score becomes 2(σ(-1) + 1) = 2.538, the highest, so
        // g2 and g0 are kept. Biased choice scores: e4 = e5 = 1.269 > e0 = 0.881, so experts 4 and 5
        // (tie: lower index first). Their weights are the unbiased σ(-1), not 1.269.
        float[] bias = [0f, 0f, 0f, 0f, 1f, 1f, 0f, 0f];
        var rule = Routing.SigmoidGroupLimitedTopK(bias, groups: 4, topKGroups: 2, normalize: false, scalingFactor: 1f);
        var (experts, weights) = Route(rule, [2f, 1f, 0f, 0f, -1f, -1f, 1.5f, 0.5f], 2);
        Assert.Equal([4, 5], experts);
        AssertWeights([Sigmoid(-1), Sigmoid(-1)], weights);
    }

    [Fact]
    public void A_group_is_masked_out_even_though_it_holds_the_single_best_expert()
    {
        // Group scores: g0 = σ(4) + σ(-4) = 1.0, g1 = 2σ(1) = 1.462, g2 = 2σ(0.8) = 1.379, g3 = 2σ(-2) = 0.238.
        // Kept: g1 and g2, so expert 0 (σ(4) = 0.982, the best of all) cannot be chosen.
        var rule = Routing.SigmoidGroupLimitedTopK(null, groups: 4, topKGroups: 2, normalize: false, scalingFactor: 1f);
        var (experts, weights) = Route(rule, [4f, -4f, 1f, 1f, 0.8f, 0.8f, -2f, -2f], 2);
        Assert.Equal([2, 3], experts);
        AssertWeights([Sigmoid(1), Sigmoid(1)], weights);
    }

    [Fact]
    public void Groups_are_ranked_by_their_two_best_scores_not_their_whole_sum()
    {
        // 2 groups of 4, one kept. g0's best two sum 2σ(2) = 1.762; g1's best two 2σ(1.5) = 1.635
        // (its whole sum, 3.27, would win). So g0 is kept and experts 0 and 1 are chosen.
        var rule = Routing.SigmoidGroupLimitedTopK(null, groups: 2, topKGroups: 1, normalize: false, scalingFactor: 1f);
        var (experts, _) = Route(rule, [2f, 2f, -10f, -10f, 1.5f, 1.5f, 1.5f, 1.5f], 2);
        Assert.Equal([0, 1], experts);
    }

    [Fact]
    public void Normalised_weights_are_scaled_by_the_routed_scaling_factor()
    {
        // Group scores: g0 = σ(1) + σ(0.5) = 1.353, g1 = σ(-0.5) + σ(-1) = 0.646, g2 = σ(2) + σ(-2) = 1.0,
        // g3 = σ(0) + σ(0.25) = 1.062. Kept: g0, g3. Top 3 of {0: 0.731, 1: 0.622, 6: 0.5, 7: 0.562}
        // are 0, 1, 7 (expert 4, σ(2), is masked). Weights: 2.5 · σ / (σ(1) + σ(0.5) + σ(0.25)).
        var rule = Routing.SigmoidGroupLimitedTopK(null, groups: 4, topKGroups: 2, normalize: true, scalingFactor: 2.5f);
        var (experts, weights) = Route(rule, [1f, 0.5f, -0.5f, -1f, 2f, -2f, 0f, 0.25f], 3);
        Assert.Equal([0, 1, 7], experts);
        var sum = Sigmoid(1) + Sigmoid(0.5) + Sigmoid(0.25);
        AssertWeights([2.5 * Sigmoid(1) / sum, 2.5 * Sigmoid(0.5) / sum, 2.5 * Sigmoid(0.25) / sum], weights);
        Assert.Equal(2.5f, weights.Sum(), 5);
    }

    [Fact]
    public void Unnormalised_weights_are_scaled_too()
    {
        var rule = Routing.SigmoidGroupLimitedTopK(null, groups: 1, topKGroups: 1, normalize: false, scalingFactor: 2.5f);
        var (experts, weights) = Route(rule, [-1f, 3f, 0f], 2);
        Assert.Equal([1, 2], experts);
        AssertWeights([2.5 * Sigmoid(3), 2.5 * Sigmoid(0)], weights);
    }

    [Fact]
    public void Masked_experts_score_zero_not_minus_infinity_as_in_the_reference()
    {
        // All logits 0, so every σ is 0.5. Biased: g0 = [-0.5, -0.5], g1 = [-2.5, -2.5]; g0 is kept.
        // The reference fills masked experts with 0.0, which beats g0's negative scores, so expert 2 of the
        // dropped group wins, with its unbiased weight 0.5.
        float[] bias = [-1f, -1f, -3f, -3f];
        var rule = Routing.SigmoidGroupLimitedTopK(bias, groups: 2, topKGroups: 1, normalize: false, scalingFactor: 1f);
        var (experts, weights) = Route(rule, [0f, 0f, 0f, 0f], 1);
        Assert.Equal([2], experts);
        AssertWeights([0.5], weights);

        // With three experts to choose: the two masked ones (score 0) come before the kept g0 (-0.5).
        (experts, weights) = Route(rule, [0f, 0f, 0f, 0f], 3);
        Assert.Equal([2, 3, 0], experts);
        AssertWeights([0.5, 0.5, 0.5], weights);
    }

    [Fact]
    public void Experts_that_do_not_form_the_groups_are_refused()
    {
        var rule = Routing.SigmoidGroupLimitedTopK(null, groups: 3, topKGroups: 1, normalize: false, scalingFactor: 1f);
        Assert.Throws<InvalidOperationException>(() => Route(rule, new float[8], 2));
        rule = Routing.SigmoidGroupLimitedTopK(null, groups: 2, topKGroups: 3, normalize: false, scalingFactor: 1f);
        Assert.Throws<InvalidOperationException>(() => Route(rule, new float[8], 2));
    }
}
