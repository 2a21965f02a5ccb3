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

    /// <summary>The routing rule; <see cref="Routing.Describe"/> says which one, for backends that run it elsewhere.</summary>
    public RoutingRule Rule => rule;

    public Linear? SharedExpertGate => sharedExpertGate;

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

    /// <summary>Adds Σ weight · expert(x) over each token's routed experts into output; the experts run as one group.</summary>
    public void RunExperts(ReadOnlySpan<float> x, ExpertRouting routing, Span<float> output)
    {
        ArgumentNullException.ThrowIfNull(routing);
        var hidden = router.InFeatures;
        var byExpert = routing.ByExpert(ExpertCount);
        var (batch, routed) = GatherByExpert(x, byExpert, hidden);
        var group = routed.Select(r => new ExpertRows(experts[r.Expert], r.Offset, r.Count)).ToList();
        var result = new float[batch.Length];
        ExpertGroup.Forward(group, batch, result, hidden);
        Combine(byExpert, routing, result, output);
    }

    /// <summary>
    /// The rows of <paramref name="x"/> each expert is routed, laid out expert by expert in the order
    /// <see cref="ExpertRouting.ByExpert"/> gives (the layout <see cref="Combine"/> reads), and for every
    /// routed expert its index, first row and row count.
    /// </summary>
    public static (float[] Rows, List<(int Expert, int Offset, int Count)> Experts) GatherByExpert(ReadOnlySpan<float> x, List<(int Token, int Slot)>?[] byExpert, int hidden)
    {
        ArgumentNullException.ThrowIfNull(byExpert);
        var experts = new List<(int Expert, int Offset, int Count)>();
        var total = 0;
        for (var e = 0; e < byExpert.Length; e++)
        {
            if (byExpert[e] is { } routed)
            {
                experts.Add((e, total, routed.Count));
                total += routed.Count;
            }
        }

        var rows = new float[total * hidden];
        var row = 0;
        foreach (var (expert, _, _) in experts)
        {
            foreach (var (token, _) in byExpert[expert]!)
            {
                x.Slice(token * hidden, hidden).CopyTo(rows.AsSpan(row++ * hidden));
            }
        }

        return (rows, experts);
    }

    /// <summary>
    /// Adds each expert's rows of <paramref name="results"/> (laid out expert by expert as
    /// <see cref="ExpertRouting.ByExpert"/> orders them) into output with the routing weights, in expert
    /// order, so every way of computing the experts sums in the same order. Experts whose
    /// <paramref name="skip"/> entry is true are left out (their rows are still counted).
    /// </summary>
    public void Combine(List<(int Token, int Slot)>[] byExpert, ExpertRouting routing, ReadOnlySpan<float> results, Span<float> output, bool[]? skip = null, float[]? tokenScale = null)
    {
        ArgumentNullException.ThrowIfNull(byExpert);
        ArgumentNullException.ThrowIfNull(routing);
        var hidden = router.InFeatures;
        var row = 0;
        for (var e = 0; e < byExpert.Length; e++)
        {
            if (byExpert[e] is not { } routed)
            {
                continue;
            }

            if (skip?[e] == true)
            {
                row += routed.Count;
                continue;
            }

            foreach (var (token, slot) in routed)
            {
                var target = output.Slice(token * hidden, hidden);
                var weight = routing.Weights[(token * routing.TopK) + slot] * (tokenScale?[token] ?? 1f);
                TensorPrimitives.MultiplyAdd(results.Slice(row++ * hidden, hidden), weight, target, target);
            }
        }
    }

    /// <summary>Adds the shared expert's output (gated when the block has a shared-expert gate) into output.</summary>
    public void AddSharedExpert(ReadOnlySpan<float> x, int tokens, Span<float> output)
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
