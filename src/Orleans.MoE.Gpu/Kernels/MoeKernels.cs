using ILGPU;
using ILGPU.Algorithms;

namespace Orleans.MoE.Gpu.Kernels;

/// <summary>
/// A routing rule on the device, one warp per token. Scheme 0: softmax over the experts, top k,
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
    public int Tokens;
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

/// <summary>
/// Tokens grouped by expert (<see cref="MoeKernels.Permute"/>): X [rows, K] holds each routed expert's
/// Counts[e] rows from Starts[e]; Active[j] is 1 + the j-th routed expert, 0 past the last (Slots in all).
/// Y [rows, N] = each row times its expert's block of N weight rows (rows [e·N, (e+1)·N) of the stack).
/// </summary>
internal struct ExpertRowsArgs
{
    public ArrayView<float> X;
    public ArrayView<int> Counts;
    public ArrayView<int> Starts;
    public ArrayView<int> Active;
    public ArrayView<float> Y;
    public int K;
    public int N;
    public int Slots;
}

/// <summary>
/// The (token, slot) pairs grouped by expert (<see cref="MoeKernels.Permute"/>), on the device: Counts[e] rows
/// from Starts[e] for expert e; row r is pair PairOfRow[r], of expert Experts[PairOfRow[r]]. Host-side only.
/// </summary>
internal readonly record struct RowsByExpert(ArrayView<int> Counts, ArrayView<int> Starts, ArrayView<int> Experts, ArrayView<int> PairOfRow);

/// <summary>The routers, the permutation of tokens by expert, the experts' grouped GEMV and the weighted combine.</summary>
internal static class MoeKernels
{
    /// <summary>One warp per token (launch groups of whole warps); see <see cref="RouteArgs"/>.</summary>
    public static void Route(RouteArgs a)
    {
        var token = (Grid.IdxX * (Group.DimX / Warp.WarpSize)) + Warp.WarpIdx;
        if (token >= a.Tokens)
        {
            return;
        }

        var e = a.ExpertCount;
        var row = (long)token * e;
        var values = a.Scores.SubView(row, e);
        var logits = a.Logits.SubView(row, e);
        var chosen = a.Experts.SubView((long)token * a.TopK, a.TopK);
        var weights = a.Weights.SubView((long)token * a.TopK, a.TopK);
        if (a.Scheme == 0)
        {
            var max = float.NegativeInfinity;
            for (var i = Warp.LaneIdx; i < e; i += Warp.WarpSize)
            {
                max = logits[i] > max ? logits[i] : max;
            }

            max = Reductions.WarpMax(max);
            var sum = 0f;
            for (var i = Warp.LaneIdx; i < e; i += Warp.WarpSize)
            {
                var v = XMath.Exp(logits[i] - max);
                values[i] = v;
                sum += v;
            }

            sum = Reductions.WarpSum(sum);
            for (var i = Warp.LaneIdx; i < e; i += Warp.WarpSize)
            {
                values[i] /= sum;
            }

            Warp.Barrier();
            SelectTopK(values, e, chosen, a.TopK);
        }
        else
        {
            var choice = a.Choice.SubView(row, e);
            for (var i = Warp.LaneIdx; i < e; i += Warp.WarpSize)
            {
                var s = 1f / (1f + XMath.Exp(-logits[i]));
                values[i] = s;
                choice[i] = s + (a.Bias.Length > 0 ? a.Bias[i] : 0f);
            }

            Warp.Barrier();
            if (a.Groups > 1)
            {
                var perGroup = e / a.Groups;
                var groupScores = a.GroupScores.SubView((long)token * a.Groups, a.Groups);
                var kept = a.KeptGroups.SubView((long)token * a.Groups, a.TopKGroups);
                for (var g = 0; g < a.Groups; g++)
                {
                    // The group's two best (biased) scores: the top one, then the best other.
                    var best = WarpArgMax(choice, g * perGroup, perGroup, kept, 0, -1);
                    var score = choice[best];
                    if (perGroup > 1)
                    {
                        score += choice[WarpArgMax(choice, g * perGroup, perGroup, kept, 0, best)];
                    }

                    if (Warp.LaneIdx == 0)
                    {
                        groupScores[g] = score;
                    }
                }

                Warp.Barrier();
                SelectTopK(groupScores, a.Groups, kept, a.TopKGroups);
                for (var i = Warp.LaneIdx; i < e; i += Warp.WarpSize)
                {
                    var isKept = false;
                    for (var s = 0; s < a.TopKGroups; s++)
                    {
                        isKept |= kept[s] == i / perGroup;
                    }

                    if (!isKept)
                    {
                        choice[i] = 0f;
                    }
                }

                Warp.Barrier();
            }

            SelectTopK(choice, e, chosen, a.TopK);
        }

        if (Warp.LaneIdx != 0)
        {
            return;
        }

        var total = 0f;
        for (var s = 0; s < a.TopK; s++)
        {
            var w = values[chosen[s]];
            weights[s] = w;
            total += w;
        }

        for (var s = 0; s < a.TopK; s++)
        {
            weights[s] = a.Scheme == 0
                ? (a.Normalize != 0 ? weights[s] / total : weights[s])
                : (a.Normalize != 0 ? weights[s] / (total + 1e-20f) : weights[s]) * a.Scaling;
        }
    }

    /// <summary>
    /// The warp's k largest of values[0..n), largest first, ties to the lower index, NaN never chosen
    /// first (as TopK.Select), into chosen (lane 0 writes; the warp waits for each choice).
    /// </summary>
    private static void SelectTopK(ArrayView<float> values, int n, ArrayView<int> chosen, int k)
    {
        for (var s = 0; s < k; s++)
        {
            var best = WarpArgMax(values, 0, n, chosen, s, -1);
            if (Warp.LaneIdx == 0)
            {
                chosen[s] = best;
            }

            Warp.Barrier();
        }
    }

    /// <summary>
    /// The index of the largest of values[from..from + count) other than taken[0..takenCount) and
    /// <paramref name="excluded"/>, ties to the lower index, NaN as −∞; every lane gets it.
    /// </summary>
    private static int WarpArgMax(ArrayView<float> values, int from, int count, ArrayView<int> taken, int takenCount, int excluded)
    {
        var best = int.MaxValue;
        var bestValue = float.NegativeInfinity;
        for (var i = from + Warp.LaneIdx; i < from + count; i += Warp.WarpSize)
        {
            var free = i != excluded;
            for (var p = 0; p < takenCount; p++)
            {
                free &= taken[p] != i;
            }

            var v = values[i];
            v = XMath.IsNaN(v) ? float.NegativeInfinity : v;
            if (free && (best == int.MaxValue || v > bestValue))
            {
                best = i;
                bestValue = v;
            }
        }

        for (var mask = Warp.WarpSize / 2; mask > 0; mask >>= 1)
        {
            var otherValue = Warp.ShuffleXor(bestValue, mask);
            var other = Warp.ShuffleXor(best, mask);
            if (otherValue > bestValue || (otherValue == bestValue && other < best))
            {
                best = other;
                bestValue = otherValue;
            }
        }

        return best;
    }

    /// <summary>One group per expert: how many (token, slot) pairs chose it, the group reading the pairs side by side.</summary>
    public static void CountExperts(ArrayView<int> experts, ArrayView<int> counts)
    {
        var expert = Grid.IdxX;
        var count = 0;
        for (var p = Group.IdxX; p < experts.IntLength; p += Group.DimX)
        {
            count += experts[p] == expert ? 1 : 0;
        }

        Reductions.GroupScan(count, out var total);
        if (Group.IdxX == 0)
        {
            counts[expert] = total;
        }
    }

    /// <summary>
    /// One group per expert: its pairs, in pair order, get consecutive rows after the rows of the
    /// experts before it (rowOfPair[p], pairOfRow[r]): the tokens grouped by expert. The group takes a
    /// group-wide stretch of pairs at a time, and a pair's row is its rank among the stretch's pairs of
    /// that expert (a group scan), so the order is the pairs' own and every run gives the same rows.
    /// starts[e] is the expert's first row; an expert with rows is active[j] − 1, j the number of such
    /// experts before it, and active[j] is 0 from the last of them to active's end.
    /// </summary>
    public static void Permute(ArrayView<int> experts, ArrayView<int> counts, ArrayView<int> rowOfPair, ArrayView<int> pairOfRow, ArrayView<int> starts, ArrayView<int> active)
    {
        var expert = Grid.IdxX;
        var rowsBefore = 0;
        var routedBefore = 0;
        var routed = 0;
        for (var e = Group.IdxX; e < counts.IntLength; e += Group.DimX)
        {
            rowsBefore += e < expert ? counts[e] : 0;
            routedBefore += e < expert && counts[e] > 0 ? 1 : 0;
            routed += counts[e] > 0 ? 1 : 0;
        }

        Reductions.GroupScan(rowsBefore, out var row);
        Reductions.GroupScan(routedBefore, out var slot);
        Reductions.GroupScan(routed, out var routedTotal);
        var count = counts[expert];
        if (Group.IdxX == 0)
        {
            starts[expert] = row;
            if (count > 0)
            {
                active[slot] = expert + 1;
            }
        }

        if (expert == 0)
        {
            for (var j = routedTotal + Group.IdxX; j < active.IntLength; j += Group.DimX)
            {
                active[j] = 0;
            }
        }

        // Every thread sees the same rows found, so the group leaves the loop together, once the
        // expert's last pair has its row.
        var end = row + count;
        for (var first = 0; row < end && first < experts.IntLength; first += Group.DimX)
        {
            var p = first + Group.IdxX;
            var mine = p < experts.IntLength && experts[p] == expert ? 1 : 0;
            var rank = Reductions.GroupScan(mine, out var found);
            if (mine != 0)
            {
                rowOfPair[p] = row + rank;
                pairOfRow[row + rank] = p;
            }

            row += found;
        }
    }

    /// <summary>
    /// Grouped expert GEMV: one warp per (slot, column) of <see cref="ExpertRowsArgs"/>, over the slot's
    /// expert's rows eight at a time, so its weights are read once per eight rows (once in all for the
    /// few rows an expert gets at small T), straight from the device's permutation (no host round trip).
    /// Launch with groups of whole warps.
    /// </summary>
    public static void ExpertRows<TW>(ExpertRowsArgs a, TW w)
        where TW : struct, IWeights
    {
        var output = (Grid.IdxX * (Group.DimX / Warp.WarpSize)) + Warp.WarpIdx;
        if (output >= a.Slots * a.N)
        {
            return;
        }

        var slot = output / a.N;
        var column = output - (slot * a.N);
        var expert = a.Active[slot] - 1;
        if (expert < 0)
        {
            return;
        }

        var start = a.Starts[expert];
        var count = a.Counts[expert];
        var weights = (((long)expert * a.N) + column) * a.K;
        for (var t = 0; t < count; t += 8)
        {
            // Rows past the expert's last repeat it (read, not stored).
            var x0 = RowOf(a, start, t, count);
            var x1 = RowOf(a, start, t + 1, count);
            var x2 = RowOf(a, start, t + 2, count);
            var x3 = RowOf(a, start, t + 3, count);
            var x4 = RowOf(a, start, t + 4, count);
            var x5 = RowOf(a, start, t + 5, count);
            var x6 = RowOf(a, start, t + 6, count);
            var x7 = RowOf(a, start, t + 7, count);
            var (s0, s1, s2, s3, s4, s5, s6, s7) = (0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f);
            if ((a.K & 3) == 0)
            {
                for (var k = Warp.LaneIdx * 4; k < a.K; k += Warp.WarpSize * 4)
                {
                    w.Get4(weights + k, out var w0, out var w1, out var w2, out var w3);
                    s0 += Dot4(a.X, x0 + k, w0, w1, w2, w3);
                    s1 += Dot4(a.X, x1 + k, w0, w1, w2, w3);
                    s2 += Dot4(a.X, x2 + k, w0, w1, w2, w3);
                    s3 += Dot4(a.X, x3 + k, w0, w1, w2, w3);
                    s4 += Dot4(a.X, x4 + k, w0, w1, w2, w3);
                    s5 += Dot4(a.X, x5 + k, w0, w1, w2, w3);
                    s6 += Dot4(a.X, x6 + k, w0, w1, w2, w3);
                    s7 += Dot4(a.X, x7 + k, w0, w1, w2, w3);
                }
            }
            else
            {
                for (var k = Warp.LaneIdx; k < a.K; k += Warp.WarpSize)
                {
                    var weight = w.Get(weights + k);
                    s0 += a.X[x0 + k] * weight;
                    s1 += a.X[x1 + k] * weight;
                    s2 += a.X[x2 + k] * weight;
                    s3 += a.X[x3 + k] * weight;
                    s4 += a.X[x4 + k] * weight;
                    s5 += a.X[x5 + k] * weight;
                    s6 += a.X[x6 + k] * weight;
                    s7 += a.X[x7 + k] * weight;
                }
            }

            var y = ((long)(start + t) * a.N) + column;
            Store(a, y, t, count, 0, Reductions.WarpSum(s0));
            Store(a, y, t, count, 1, Reductions.WarpSum(s1));
            Store(a, y, t, count, 2, Reductions.WarpSum(s2));
            Store(a, y, t, count, 3, Reductions.WarpSum(s3));
            Store(a, y, t, count, 4, Reductions.WarpSum(s4));
            Store(a, y, t, count, 5, Reductions.WarpSum(s5));
            Store(a, y, t, count, 6, Reductions.WarpSum(s6));
            Store(a, y, t, count, 7, Reductions.WarpSum(s7));
        }
    }

    /// <summary>The offset in X of the expert's row <paramref name="t"/>, or of its last row past the end.</summary>
    private static long RowOf(ExpertRowsArgs a, int start, int t, int count) => (long)(start + XMath.Min(t, count - 1)) * a.K;

    private static float Dot4(ArrayView<float> x, long at, float w0, float w1, float w2, float w3) =>
        (x[at] * w0) + (x[at + 1] * w1) + (x[at + 2] * w2) + (x[at + 3] * w3);

    /// <summary>Lane 0 stores row t + i's sum when that row is the expert's.</summary>
    private static void Store(ExpertRowsArgs a, long y, int t, int count, int i, float sum)
    {
        if (Warp.LaneIdx == 0 && t + i < count)
        {
            a.Y[y + (i * a.N)] = sum;
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
