using ILGPU;
using ILGPU.Algorithms;

namespace Orleans.MoE.Gpu.Kernels;

/// <summary>
/// A routing rule on the device, one thread per token. Scheme 0: softmax over the experts, top k,
/// renormalised when Normalize (Mixtral, Qwen, OLMoE). Scheme 1: DeepSeek-V3's sigmoid scores,
/// selection on score + Bias within the TopKGroups best of Groups groups (a group scores its two
/// best), weights the unbiased scores, renormalised (+1e-20) when Normalize, times Scaling.
/// Scores, Choice [T, E] and GroupScores, KeptGroups [T, Groups] are scratch.
/// </summary>
internal struct RouteArgs
{
    public ArrayView<float> Logits;
    public ArrayView<float> Scores;
    public ArrayView<float> Choice;
    public ArrayView<float> GroupScores;
    public ArrayView<int> KeptGroups;
    public ArrayView<float> Bias;
    public ArrayView<int> Experts;
    public ArrayView<float> Weights;
    public int ExpertCount;
    public int TopK;
    public int Scheme;
    public int Normalize;
    public int Groups;
    public int TopKGroups;
    public float Scaling;
}

/// <summary>
/// Sum of the routed experts' outputs with the routing weights (in expert order, as the CPU engine
/// adds), plus the shared expert (times sigmoid of its gate when there is one), added into hidden:
/// hidden[t, :] += Σ_s w[t, s] · results[row(t, s), :] + g(t) · shared[t, :]. row(t, s) is RowOfPair[t·k + s],
/// or t·k + s itself when RowOfPair is empty (results computed pair by pair).
/// </summary>
internal struct CombineArgs
{
    public ArrayView<float> Results;
    public ArrayView<int> RowOfPair;
    public ArrayView<int> Experts;
    public ArrayView<float> Weights;
    public ArrayView<float> Shared;
    public ArrayView<float> SharedGate;
    public ArrayView<float> Hidden;
    public int Width;
    public int TopK;
}

/// <summary>The routers, the permutation of tokens by expert and the weighted combine.</summary>
internal static class MoeKernels
{
    public static void Route(Index1D at, RouteArgs a)
    {
        int token = at;
        var e = a.ExpertCount;
        var row = (long)token * e;
        var slots = (long)token * a.TopK;
        var values = a.Scores.SubView(row, e);
        if (a.Scheme == 0)
        {
            var max = float.NegativeInfinity;
            for (var i = 0; i < e; i++)
            {
                max = a.Logits[row + i] > max ? a.Logits[row + i] : max;
            }

            var sum = 0f;
            for (var i = 0; i < e; i++)
            {
                var v = XMath.Exp(a.Logits[row + i] - max);
                values[i] = v;
                sum += v;
            }

            for (var i = 0; i < e; i++)
            {
                values[i] /= sum;
            }

            SelectTopK(values, e, a.Experts.SubView(slots, a.TopK), a.TopK);
        }
        else
        {
            var choice = a.Choice.SubView(row, e);
            for (var i = 0; i < e; i++)
            {
                var s = 1f / (1f + XMath.Exp(-a.Logits[row + i]));
                values[i] = s;
                choice[i] = s + (a.Bias.Length > 0 ? a.Bias[i] : 0f);
            }

            if (a.Groups > 1)
            {
                var perGroup = e / a.Groups;
                var groupScores = a.GroupScores.SubView((long)token * a.Groups, a.Groups);
                for (var g = 0; g < a.Groups; g++)
                {
                    // The group's two best (biased) scores: positions of the top one, then of the best other.
                    var best = -1;
                    for (var i = 0; i < perGroup; i++)
                    {
                        if (best < 0 || Value(choice, (g * perGroup) + i) > Value(choice, (g * perGroup) + best))
                        {
                            best = i;
                        }
                    }

                    var score = choice[(g * perGroup) + best];
                    if (perGroup > 1)
                    {
                        var second = -1;
                        for (var i = 0; i < perGroup; i++)
                        {
                            if (i != best && (second < 0 || Value(choice, (g * perGroup) + i) > Value(choice, (g * perGroup) + second)))
                            {
                                second = i;
                            }
                        }

                        score += choice[(g * perGroup) + second];
                    }

                    groupScores[g] = score;
                }

                var kept = a.KeptGroups.SubView((long)token * a.Groups, a.TopKGroups);
                SelectTopK(groupScores, a.Groups, kept, a.TopKGroups);
                for (var g = 0; g < a.Groups; g++)
                {
                    var isKept = false;
                    for (var s = 0; s < a.TopKGroups; s++)
                    {
                        isKept |= kept[s] == g;
                    }

                    if (!isKept)
                    {
                        for (var i = 0; i < perGroup; i++)
                        {
                            choice[(g * perGroup) + i] = 0f;
                        }
                    }
                }
            }

            SelectTopK(choice, e, a.Experts.SubView(slots, a.TopK), a.TopK);
        }

        var total = 0f;
        for (var s = 0; s < a.TopK; s++)
        {
            var w = values[a.Experts[slots + s]];
            a.Weights[slots + s] = w;
            total += w;
        }

        if (a.Scheme == 0)
        {
            if (a.Normalize != 0)
            {
                for (var s = 0; s < a.TopK; s++)
                {
                    a.Weights[slots + s] /= total;
                }
            }
        }
        else
        {
            for (var s = 0; s < a.TopK; s++)
            {
                var w = a.Weights[slots + s];
                a.Weights[slots + s] = (a.Normalize != 0 ? w / (total + 1e-20f) : w) * a.Scaling;
            }
        }
    }

    /// <summary>The k largest of values[0..n), largest first, ties to the lower index, NaN never chosen first (as TopK.Select).</summary>
    private static void SelectTopK(ArrayView<float> values, int n, ArrayView<int> chosen, int k)
    {
        for (var s = 0; s < k; s++)
        {
            var best = -1;
            for (var i = 0; i < n; i++)
            {
                var taken = false;
                for (var p = 0; p < s; p++)
                {
                    taken |= chosen[p] == i;
                }

                if (!taken && (best < 0 || Value(values, i) > Value(values, best)))
                {
                    best = i;
                }
            }

            chosen[s] = best;
        }
    }

    private static float Value(ArrayView<float> values, int i)
    {
        var v = values[i];
        return XMath.IsNaN(v) ? float.NegativeInfinity : v;
    }

    /// <summary>One thread per expert: how many (token, slot) pairs chose it.</summary>
    public static void CountExperts(Index1D at, ArrayView<int> experts, ArrayView<int> counts)
    {
        int expert = at;
        var count = 0;
        for (var p = 0; p < experts.IntLength; p++)
        {
            count += experts[p] == expert ? 1 : 0;
        }

        counts[expert] = count;
    }

    /// <summary>
    /// One thread per expert: its pairs, in token order, get consecutive rows after the rows of the
    /// experts before it (rowOfPair[p], pairOfRow[r]): the tokens grouped by expert.
    /// </summary>
    public static void Permute(Index1D at, ArrayView<int> experts, ArrayView<int> counts, ArrayView<int> rowOfPair, ArrayView<int> pairOfRow)
    {
        int expert = at;
        var row = 0;
        for (var e = 0; e < expert; e++)
        {
            row += counts[e];
        }

        for (var p = 0; p < experts.IntLength; p++)
        {
            if (experts[p] == expert)
            {
                rowOfPair[p] = row;
                pairOfRow[row] = p;
                row++;
            }
        }
    }

    /// <summary>rows[r, :] = x[pairOfRow[r] / k, :]: each expert's tokens gathered into its block of rows.</summary>
    public static void Gather(Index1D at, ArrayView<float> x, ArrayView<int> pairOfRow, ArrayView<float> rows, int width, int topK)
    {
        int index = at;
        var r = index / width;
        var c = index - (r * width);
        rows[index] = x[((long)(pairOfRow[r] / topK) * width) + c];
    }

    /// <summary>One thread per (token, feature); see <see cref="CombineArgs"/>.</summary>
    public static void Combine(Index1D at, CombineArgs a)
    {
        int index = at;
        var t = index / a.Width;
        var c = index - (t * a.Width);
        var slots = t * a.TopK;
        var delta = 0f;
        var last = -1;
        for (var n = 0; n < a.TopK; n++)
        {
            // The slot with the next expert index: experts add in expert order.
            var next = -1;
            for (var s = 0; s < a.TopK; s++)
            {
                var e = a.Experts[slots + s];
                if (e > last && (next < 0 || e < a.Experts[slots + next]))
                {
                    next = s;
                }
            }

            last = a.Experts[slots + next];
            var pair = slots + next;
            var row = a.RowOfPair.Length > 0 ? a.RowOfPair[pair] : pair;
            delta += a.Results[((long)row * a.Width) + c] * a.Weights[pair];
        }

        if (a.Shared.Length > 0)
        {
            var gate = a.SharedGate.Length > 0 ? 1f / (1f + XMath.Exp(-a.SharedGate[t])) : 1f;
            delta += a.Shared[index] * gate;
        }

        a.Hidden[index] += delta;
    }
}
