using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Gpu.Kernels;
using Orleans.MoE.Models.Layers;
using Orleans.MoE.Tensors;
using Orleans.MoE.Tensors.Cpu;
using static Orleans.MoE.Gpu.Tests.KernelTests;

namespace Orleans.MoE.Gpu.Tests;

/// <summary>
/// The MoE kernels against the CPU engine: the warp-per-token routers against the routing rules (ties,
/// groups, bias, scaling) and the grouped expert GEMV over the device's permutation against each
/// expert's product, on ILGPU's CPU accelerator with 4-wide and 32-wide warps.
/// </summary>
public sealed class MoeKernelTests
{
    public static TheoryData<int> WarpSizes => new() { 4, 32 };

    [Theory]
    [MemberData(nameof(WarpSizes))]
    public void Softmax_router_picks_and_weighs_as_the_cpu_rule(int warpSize)
    {
        AssertRoutes(warpSize, new SoftmaxTopKScheme(Normalize: true), experts: 40, topK: 3);
        AssertRoutes(warpSize, new SoftmaxTopKScheme(Normalize: false), experts: 6, topK: 2);
    }

    [Theory]
    [MemberData(nameof(WarpSizes))]
    public void Deepseek_router_picks_and_weighs_as_the_cpu_rule(int warpSize)
    {
        var bias = Values(new Random(5), 16);
        AssertRoutes(warpSize, new SigmoidGroupLimitedTopKScheme(bias, Groups: 4, TopKGroups: 2, Normalize: true, ScalingFactor: 2.5f), experts: 16, topK: 3);
        AssertRoutes(warpSize, new SigmoidGroupLimitedTopKScheme(null, Groups: 1, TopKGroups: 1, Normalize: false, ScalingFactor: 1f), experts: 8, topK: 2);
    }

    [Theory]
    [InlineData(false, 4)]
    [InlineData(true, 4)]
    [InlineData(true, 32)]
    public void Grouped_expert_gemv_gives_each_row_its_experts_product(bool bf16, int warpSize)
    {
        using var device = GpuDevice.CreateIlgpuCpu(warpSize: warpSize, warpsPerGroup: 2);
        var random = new Random(11);
        var (experts, n, k, topK) = (5, 6, bf16 ? 40 : 13, 2);

        // 11 tokens, top 2: expert 1 gets 11 rows (two passes of eight), expert 3 one, expert 4 ten, 0 and 2 none.
        int[] routing = [1, 4, 4, 1, 1, 4, 3, 4, 4, 1, 1, 4, 4, 1, 1, 4, 1, 4, 1, 4, 1, 1];
        var tokens = routing.Length / topK;
        var stacked = Values(random, experts * n * k);
        var matrix = bf16 ? Bf16Matrix(stacked, experts * n, k) : WeightMatrix.FromArray(stacked, experts * n, k);
        var x = Values(random, tokens * k);

        using var w = DeviceMatrix.Upload(device, matrix);
        using var workspace = new Workspace(device);
        var xs = Upload(workspace, x);
        var routed = workspace.Ints(routing.Length);
        ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(routed, routing);
        var counts = workspace.Ints(experts);
        var starts = workspace.Ints(experts);
        var active = workspace.Ints(experts);
        ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(active, Enumerable.Repeat(-7, experts).ToArray()); // stale scratch
        var rowOfPair = workspace.Ints(routing.Length);
        var pairOfRow = workspace.Ints(routing.Length);
        var rows = workspace.Floats((long)routing.Length * k);
        var y = workspace.Floats((long)routing.Length * n);
        device.Ops.CountExperts(routed, counts);
        device.Ops.Permute(routed, counts, rowOfPair, pairOfRow, starts, active);
        device.Ops.Gather(xs, pairOfRow, rows, routing.Length, k, topK);
        device.Ops.ExpertRows(w.View, n, rows, counts, starts, active, y);

        Assert.Equal([0, 11, 0, 1, 10], counts.ToHost());
        Assert.Equal([0, 0, 11, 11, 12], starts.ToHost());
        Assert.Equal([2, 4, 5, 0, 0], active.ToHost());
        var rowsOf = rowOfPair.ToHost();
        var actual = y.ToHost();
        for (var pair = 0; pair < routing.Length; pair++)
        {
            var expected = new float[n];
            MatMul.Multiply(x.AsSpan(pair / topK * k, k), 1, Expert(matrix, routing[pair], n, stacked, bf16), expected);
            AssertClose(expected, actual.AsSpan(rowsOf[pair] * n, n).ToArray());
        }
    }

    [Theory]
    [InlineData(4, 2)]
    [InlineData(32, 4)]
    public void Permutation_groups_the_pairs_by_expert_in_pair_order(int warpSize, int warpsPerGroup)
    {
        using var device = GpuDevice.CreateIlgpuCpu(warpSize: warpSize, warpsPerGroup: warpsPerGroup);
        var random = new Random(warpSize);

        // Many group-wide stretches of pairs; experts 0, 7 and the last get none, expert 3 most.
        const int Experts = 37;
        var routing = Enumerable.Range(0, 1000)
            .Select(_ => random.Next(4) == 0 ? 3 : random.Next(1, Experts - 1))
            .Select(e => e == 7 ? 8 : e)
            .ToArray();
        var expectedCounts = new int[Experts];
        foreach (var e in routing)
        {
            expectedCounts[e]++;
        }

        var expectedStarts = new int[Experts];
        for (var e = 1; e < Experts; e++)
        {
            expectedStarts[e] = expectedStarts[e - 1] + expectedCounts[e - 1];
        }

        // Rows in expert order, and within an expert in pair order.
        var expectedPairOfRow = Enumerable.Range(0, routing.Length).OrderBy(p => routing[p]).ThenBy(p => p).ToArray();
        var expectedRowOfPair = new int[routing.Length];
        for (var r = 0; r < routing.Length; r++)
        {
            expectedRowOfPair[expectedPairOfRow[r]] = r;
        }

        var routedExperts = Enumerable.Range(0, Experts).Where(e => expectedCounts[e] > 0).Select(e => e + 1).ToArray();
        var expectedActive = routedExperts.Concat(Enumerable.Repeat(0, Experts - routedExperts.Length)).ToArray();

        using var workspace = new Workspace(device);
        var routed = workspace.Ints(routing.Length);
        ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(routed, routing);
        var counts = workspace.Ints(Experts);
        var starts = workspace.Ints(Experts);
        var active = workspace.Ints(Experts);
        var rowOfPair = workspace.Ints(routing.Length);
        var pairOfRow = workspace.Ints(routing.Length);
        foreach (var scratch in new[] { counts, starts, active, rowOfPair, pairOfRow })
        {
            ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(scratch, Enumerable.Repeat(-7, scratch.IntLength).ToArray());
        }

        device.Ops.CountExperts(routed, counts);
        device.Ops.Permute(routed, counts, rowOfPair, pairOfRow, starts, active);

        Assert.Equal(expectedCounts, counts.ToHost());
        Assert.Equal(expectedStarts, starts.ToHost());
        Assert.Equal(expectedActive, active.ToHost());
        Assert.Equal(expectedPairOfRow, pairOfRow.ToHost());
        Assert.Equal(expectedRowOfPair, rowOfPair.ToHost());
    }

    /// <summary>
    /// The exact split for the experts' cuBLAS GEMMs, all rows at once: each expert's hi rows then its lo
    /// rows side by side (one GEMM per expert), and the finish adding each row's two halves back.
    /// </summary>
    [Fact]
    public void Rows_split_by_expert_keep_each_experts_halves_side_by_side()
    {
        using var device = GpuDevice.CreateIlgpuCpu();
        var random = new Random(23);
        int[] routing = [2, 0, 2, 1, 0, 2, 2, 0];
        var (experts, k, width) = (3, 5, 3);
        var rows = routing.Length;
        var x = Values(random, rows * k).Select(v => v * 77f).ToArray();
        var parts = Values(random, 2 * rows * width);

        using var workspace = new Workspace(device);
        var routed = workspace.Ints(rows);
        ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(routed, routing);
        var counts = workspace.Ints(experts);
        var starts = workspace.Ints(experts);
        var rowOfPair = workspace.Ints(rows);
        var pairOfRow = workspace.Ints(rows);
        device.Ops.CountExperts(routed, counts);
        device.Ops.Permute(routed, counts, rowOfPair, pairOfRow, starts, workspace.Ints(experts));
        var xs = Upload(workspace, x);
        var split = workspace.UShorts(2L * rows * k);
        device.Kernels.SplitBf16ByExpert(rows * k, xs, split, routed, pairOfRow, starts, counts, k);
        var ps = Upload(workspace, parts);
        var y = workspace.Floats(rows * width);
        device.Kernels.FinishByExpert(rows * width, ps, y, routed, pairOfRow, starts, counts, width);

        var bits = split.ToHost();
        var sums = y.ToHost();
        var (n, o) = (counts.ToHost(), starts.ToHost());
        Assert.Equal([3, 1, 4], n);
        for (var e = 0; e < experts; e++)
        {
            for (var j = 0; j < n[e]; j++)
            {
                var r = o[e] + j;
                for (var c = 0; c < k; c++)
                {
                    var value = x[(r * k) + c];
                    var hi = DTypeConvert.SingleToBFloat16(value);
                    Assert.Equal(hi, bits[((2 * o[e]) + j) * k + c]);
                    Assert.Equal(DTypeConvert.SingleToBFloat16(value - DTypeConvert.BFloat16ToSingle(hi)), bits[((2 * o[e]) + n[e] + j) * k + c]);
                }

                for (var c = 0; c < width; c++)
                {
                    Assert.Equal(parts[((2 * o[e]) + j) * width + c] + parts[((2 * o[e]) + n[e] + j) * width + c], sums[(r * width) + c]);
                }
            }
        }
    }

    private static WeightMatrix Expert(WeightMatrix stacked, int expert, int n, float[] values, bool bf16)
    {
        var block = values.AsSpan(expert * n * stacked.Cols, n * stacked.Cols).ToArray();
        return bf16 ? Bf16Matrix(block, n, stacked.Cols) : WeightMatrix.FromArray(block, n, stacked.Cols);
    }

    private static void AssertRoutes(int warpSize, RoutingScheme scheme, int experts, int topK)
    {
        using var device = GpuDevice.CreateIlgpuCpu(warpSize: warpSize, warpsPerGroup: 2);
        var random = new Random(experts * topK);
        const int Tokens = 5;
        var logits = Values(random, Tokens * experts).Select(v => v * 8).ToArray();

        // Ties: token 1 has two equal best logits, token 2 all equal, token 3 a pair equal to the third best.
        logits[experts + 3] = logits[experts + 5] = 9f;
        Array.Fill(logits, 0.25f, 2 * experts, experts);
        logits[(3 * experts) + 1] = logits[(3 * experts) + 2] = 1f;
        logits[3 * experts] = 2f;

        var expectedExperts = new int[Tokens * topK];
        var expectedWeights = new float[Tokens * topK];
        for (var t = 0; t < Tokens; t++)
        {
            scheme.Route(logits.AsSpan(t * experts, experts).ToArray(), expectedExperts.AsSpan(t * topK, topK), expectedWeights.AsSpan(t * topK, topK));
        }

        using var workspace = new Workspace(device);
        var (kind, normalize, groups, topKGroups, scaling, bias) = scheme switch
        {
            SoftmaxTopKScheme s => (0, s.Normalize, 1, 1, 1f, null),
            SigmoidGroupLimitedTopKScheme s => (1, s.Normalize, s.Groups, s.TopKGroups, s.ScalingFactor, s.CorrectionBias),
            _ => throw new ArgumentOutOfRangeException(nameof(scheme)),
        };
        var chosen = workspace.Ints(Tokens * topK);
        var weights = workspace.Floats(Tokens * topK);
        device.Ops.Route(new RouteArgs
        {
            Logits = Upload(workspace, logits), Scores = workspace.Floats(Tokens * experts), Choice = workspace.Floats(Tokens * experts),
            GroupScores = workspace.Floats(Tokens * groups), KeptGroups = workspace.Ints(Tokens * groups),
            Bias = bias is null ? device.Ops.NoFloats : Upload(workspace, bias), Experts = chosen, Weights = weights,
            Tokens = Tokens, ExpertCount = experts, TopK = topK, Scheme = kind, Normalize = normalize ? 1 : 0,
            Groups = groups, TopKGroups = topKGroups, Scaling = scaling,
        });

        Assert.Equal(expectedExperts, chosen.ToHost());
        AssertClose(expectedWeights, weights.ToHost());
    }

    private static ILGPU.ArrayView<float> Upload(Workspace workspace, float[] values)
    {
        var view = workspace.Floats(values.Length);
        ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(view, values);
        return view;
    }
}
