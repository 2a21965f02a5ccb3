using Orleans.MoE.Models.Layers;

namespace Orleans.MoE.Models.Tests.Layers;

public sealed class RoutingTests
{
    private static (int[] Experts, float[] Weights) Route(RoutingRule rule, float[] logits, int k)
    {
        var experts = new int[k];
        var weights = new float[k];
        rule((float[])logits.Clone(), experts, weights);
        return (experts, weights);
    }

    private static float[] Softmax(float[] x)
    {
        var max = x.Max();
        var e = x.Select(v => MathF.Exp(v - max)).ToArray();
        var sum = e.Sum();
        return e.Select(v => v / sum).ToArray();
    }

    private static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));

    [Fact]
    public void Softmax_top_k_without_normalisation_keeps_the_probabilities()
    {
        float[] logits = [0.1f, 2f, -1f, 1.5f];
        var p = Softmax(logits);
        var (experts, weights) = Route(Routing.SoftmaxTopK(normalize: false), logits, 2);
        Assert.Equal([1, 3], experts);
        Assert.Equal(p[1], weights[0], 6);
        Assert.Equal(p[3], weights[1], 6);
    }

    [Fact]
    public void Softmax_top_k_with_normalisation_sums_to_one()
    {
        float[] logits = [0.1f, 2f, -1f, 1.5f];
        var p = Softmax(logits);
        var (_, weights) = Route(Routing.SoftmaxTopK(normalize: true), logits, 2);
        Assert.Equal(p[1] / (p[1] + p[3]), weights[0], 6);
        Assert.Equal(1f, weights.Sum(), 6);
    }

    [Fact]
    public void The_correction_bias_changes_the_choice_but_not_the_weights()
    {
        float[] logits = [2f, 1f, 0f, -1f];
        float[] bias = [0f, 0f, 5f, 0f];
        var (experts, weights) = Route(Routing.SigmoidGroupLimitedTopK(bias, groups: 1, topKGroups: 1, normalize: false, scalingFactor: 1f), logits, 2);
        Assert.Equal([2, 0], experts);
        Assert.Equal(Sigmoid(0f), weights[0], 6);
        Assert.Equal(Sigmoid(2f), weights[1], 6);
    }

    [Fact]
    public void Groups_are_ranked_by_their_two_best_scores()
    {
        // Group 0 holds the single best expert (0) but group 1's top two sum higher; with one group kept,
        // expert 0 cannot be chosen.
        float[] logits = [4f, -4f, 2f, 2f];
        var (experts, _) = Route(Routing.SigmoidGroupLimitedTopK(null, groups: 2, topKGroups: 1, normalize: false, scalingFactor: 1f), logits, 2);
        Assert.Equal([2, 3], experts.Order().ToArray());
    }

    [Fact]
    public void Normalised_weights_are_scaled_by_the_routed_scaling_factor()
    {
        float[] logits = [1f, 0.5f, -0.5f, -1f];
        var (experts, weights) = Route(Routing.SigmoidGroupLimitedTopK(null, groups: 2, topKGroups: 2, normalize: true, scalingFactor: 2.5f), logits, 2);
        Assert.Equal([0, 1], experts);
        var (a, b) = (Sigmoid(1f), Sigmoid(0.5f));
        Assert.Equal(2.5f * a / (a + b), weights[0], 5);
        Assert.Equal(2.5f, weights.Sum(), 5);
    }

    [Fact]
    public void Masked_experts_score_zero_as_in_the_reference()
    {
        // Strongly negative biases push every biased score in the kept group below zero, so the
        // reference's masked_fill(0.0) lets an expert of a dropped group win.
        float[] logits = [0f, 0f, 0f, 0f];
        float[] bias = [-1f, -1f, -3f, -3f];
        var (experts, weights) = Route(Routing.SigmoidGroupLimitedTopK(bias, groups: 2, topKGroups: 1, normalize: false, scalingFactor: 1f), logits, 1);
        Assert.Equal(2, experts[0]);
        Assert.Equal(0.5f, weights[0], 6);
    }
}
