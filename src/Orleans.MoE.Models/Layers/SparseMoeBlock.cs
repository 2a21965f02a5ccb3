using System.Numerics.Tensors;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Layers;

/// <summary>Which experts each token goes to, with what weight: [tokens, k] each.</summary>
public sealed record ExpertRouting(int Tokens, int TopK, int[] Experts, float[] Weights)
{
    /// <summary>For every expert, the (token, slot) pairs routed to it, in token order.</summary>
    public List<(int Token, int Slot)>[] ByExpert(int expertCount)
    {
        var lists = new List<(int Token, int Slot)>[expertCount];
        for (var t = 0; t < Tokens; t++)
        {
            for (var s = 0; s < TopK; s++)
            {
                var e = Experts[(t * TopK) + s];
                (lists[e] ??= []).Add((t, s));
            }
        }

        return lists;
    }
}

/// <summary>
/// A sparse mixture-of-experts block: the router scores experts per token, the routing rule picks k
/// of them with weights, every expert runs once on all the tokens routed to it (one matrix product
/// per projection), and outputs are combined with the weights. Optional shared expert(s), optionally
/// gated by sigmoid(shared_expert_gate(x)) (Qwen2-MoE).
/// </summary>
public sealed class SparseMoeBlock(
    Linear router, RoutingRule rule, int topK, SwiGluMlp[] experts,
    SwiGluMlp? sharedExpert = null, Linear? sharedExpertGate = null) : IFeedForward
{
    public int ExpertCount => experts.Length;

    public int TopK => topK;

    public IReadOnlyList<SwiGluMlp> Experts => experts;

    public SwiGluMlp? SharedExpert => sharedExpert;

    public Linear Router => router;

    public void Forward(ReadOnlySpan<float> x, int tokens, Span<float> output, LayerTrace? trace = null)
    {
        var routing = Route(x, tokens, trace);
        output[..(tokens * router.InFeatures)].Clear();
        RunExperts(x, routing, output);
        AddSharedExpert(x, tokens, output);
    }

    /// <summary>Router logits and the routing rule for each token.</summary>
    public ExpertRouting Route(ReadOnlySpan<float> x, int tokens, LayerTrace? trace = null)
    {
        var logits = router.Forward(x, tokens);
        if (trace is not null)
        {
            trace.RouterLogits = (float[])logits.Clone();
        }

        var chosen = new int[tokens * topK];
        var weights = new float[tokens * topK];
        for (var t = 0; t < tokens; t++)
        {
            rule(logits.AsSpan(t * ExpertCount, ExpertCount), chosen.AsSpan(t * topK, topK), weights.AsSpan(t * topK, topK));
        }

        return new ExpertRouting(tokens, topK, chosen, weights);
    }

    /// <summary>Adds Σ weight · expert(x) over each token's routed experts into output, one batched product per expert.</summary>
    public void RunExperts(ReadOnlySpan<float> x, ExpertRouting routing, Span<float> output)
    {
        var hidden = router.InFeatures;
        var byExpert = routing.ByExpert(ExpertCount);
        for (var e = 0; e < ExpertCount; e++)
        {
            var routed = byExpert[e];
            if (routed is null)
            {
                continue;
            }

            var batch = new float[routed.Count * hidden];
            for (var i = 0; i < routed.Count; i++)
            {
                x.Slice(routed[i].Token * hidden, hidden).CopyTo(batch.AsSpan(i * hidden));
            }

            var result = new float[routed.Count * hidden];
            experts[e].Forward(batch, routed.Count, result);
            for (var i = 0; i < routed.Count; i++)
            {
                var (token, slot) = routed[i];
                var target = output.Slice(token * hidden, hidden);
                TensorPrimitives.MultiplyAdd(result.AsSpan(i * hidden, hidden), routing.Weights[(token * topK) + slot], target, target);
            }
        }
    }

    private void AddSharedExpert(ReadOnlySpan<float> x, int tokens, Span<float> output)
    {
        if (sharedExpert is null)
        {
            return;
        }

        var hidden = router.InFeatures;
        var shared = new float[tokens * hidden];
        sharedExpert.Forward(x, tokens, shared);
        float[]? gate = null;
        if (sharedExpertGate is not null)
        {
            gate = sharedExpertGate.Forward(x, tokens);
            Activations.Sigmoid(gate);
        }

        for (var t = 0; t < tokens; t++)
        {
            var target = output.Slice(t * hidden, hidden);
            TensorPrimitives.MultiplyAdd(shared.AsSpan(t * hidden, hidden), gate?[t] ?? 1f, target, target);
        }
    }
}
