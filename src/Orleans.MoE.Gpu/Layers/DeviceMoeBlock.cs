using ILGPU;
using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Gpu.Kernels;
using Orleans.MoE.Models;
using Orleans.MoE.Models.Layers;
using Orleans.MoE.Tensors;

namespace Orleans.MoE.Gpu.Layers;

/// <summary>A dense SwiGLU feed-forward on the device, added into the residual.</summary>
internal sealed class DeviceDenseFeedForward(DeviceMlp mlp) : IDeviceFeedForward
{
    public void Forward(in DeviceStep step, ArrayView<float> x, ArrayView<float> hidden, ForwardTrace? trace) =>
        mlp.Forward(step.Ops, x, step.Tokens, hidden, step.Workspace, accumulate: true);

    public void Dispose() => mlp.Dispose();
}

/// <summary>How a <see cref="DeviceMoeBlock"/> runs its experts for a number of tokens.</summary>
internal enum ExpertPath
{
    /// <summary>Each (token, slot) pair straight from the routing.</summary>
    Pairs,

    /// <summary>Rows grouped by expert, one grouped GEMV launch per projection.</summary>
    GroupedGemv,

    /// <summary>Rows grouped by expert, one GEMM per routed expert (counts read back).</summary>
    GroupedGemm,
}

/// <summary>
/// A sparse MoE block on the device. The layer's experts are stacked: gate and up of expert e are rows
/// [e·2I, (e+1)·2I) of one [E·2I, H] matrix, its down projection rows [e·H, (e+1)·H) of one [E·H, I]
/// matrix, so a kernel reaches any expert from the device's routing. The router and its rule run on
/// the device. One token runs each of its (token, slot) pairs straight from the routing; more are
/// permuted by expert on the device, then a grouped GEMV reads each routed expert's weights once per
/// eight of its rows (no host round trip) or, with many rows per expert, each expert runs one GEMM over
/// its rows. The outputs are combined with the routing weights, plus the shared expert (gated for
/// Qwen2-MoE), into the residual.
/// </summary>
internal sealed class DeviceMoeBlock : IDeviceFeedForward
{
    private readonly DeviceLinear _router;
    private readonly DeviceMatrix _gateUp;
    private readonly DeviceMatrix _down;
    private readonly DeviceMlp? _shared;
    private readonly DeviceLinear? _sharedGate;
    private readonly DeviceBuffer<float>? _bias;
    private readonly int _experts;
    private readonly int _topK;
    private readonly int _hidden;
    private readonly int _intermediate;
    private readonly int _scheme;
    private readonly bool _normalize;
    private readonly int _groups;
    private readonly int _topKGroups;
    private readonly float _scaling;
    private readonly int _pairTokenLimit;
    private readonly int _gemvRowsLimit;

    public DeviceMoeBlock(GpuDevice device, SparseMoeBlock block)
    {
        var scheme = Routing.Describe(block.Rule)
            ?? throw new NotSupportedException("the block's routing rule was not made by Routing, so the GPU backend cannot run it");
        switch (scheme)
        {
            case SoftmaxTopKScheme softmax:
                (_scheme, _normalize, _groups, _topKGroups, _scaling) = (0, softmax.Normalize, 1, 1, 1f);
                break;
            case SigmoidGroupLimitedTopKScheme sigmoid:
                if (sigmoid.Groups <= 0 || block.ExpertCount % sigmoid.Groups != 0 || sigmoid.TopKGroups > sigmoid.Groups)
                {
                    throw new NotSupportedException($"{block.ExpertCount} experts cannot form {sigmoid.Groups} groups with top {sigmoid.TopKGroups}");
                }

                (_scheme, _normalize, _groups, _topKGroups, _scaling) = (1, sigmoid.Normalize, sigmoid.Groups, sigmoid.TopKGroups, sigmoid.ScalingFactor);
                if (sigmoid.CorrectionBias is { } bias)
                {
                    _bias = device.Allocate<float>(bias.Length, isWeights: true);
                    ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(_bias.View, bias);
                }

                break;
            default:
                throw new NotSupportedException($"routing scheme {scheme.GetType().Name} is not supported on the GPU backend");
        }

        var experts = block.Experts;
        if (experts.Any(e => e.Gate.Bias is not null || e.Up.Bias is not null || e.Down.Bias is not null))
        {
            throw new NotSupportedException("experts with biases are not supported on the GPU backend");
        }

        _experts = block.ExpertCount;
        _topK = block.TopK;
        _hidden = block.Router.InFeatures;
        _intermediate = experts[0].Gate.OutFeatures;
        _pairTokenLimit = device.Options.ExpertPairTokenLimit;
        _gemvRowsLimit = device.Options.ExpertGemvRowsLimit ?? (device.IsCuda ? GpuOptions.DefaultExpertGemvRowsLimit : 0);
        _router = new DeviceLinear(device, block.Router);
        _gateUp = DeviceMatrix.Stack(device, experts.SelectMany(e => new WeightMatrix[] { e.Gate.Weight, e.Up.Weight }).ToArray());
        _down = DeviceMatrix.Stack(device, experts.Select(e => e.Down.Weight).ToArray());
        _shared = block.SharedExpert is { } shared ? new DeviceMlp(device, shared) : null;
        _sharedGate = block.SharedExpertGate is { } gate ? new DeviceLinear(device, gate) : null;
    }

    public void Forward(in DeviceStep step, ArrayView<float> x, ArrayView<float> hidden, ForwardTrace? trace)
    {
        var (ops, workspace, tokens, _) = step;
        var pairs = tokens * _topK;

        // router logits [T, E] → experts, weights [T, k]
        var logits = workspace.Floats((long)tokens * _experts);
        _router.Forward(ops, x, tokens, logits, workspace);
        if (trace is not null)
        {
            trace.RouterLogits.Add(logits.ToHost());
        }

        var experts = workspace.Ints(pairs);
        var weights = workspace.Floats(pairs);
        ops.Route(
            new RouteArgs
            {
                Logits = logits, Scores = workspace.Floats((long)tokens * _experts), Choice = workspace.Floats((long)tokens * _experts),
                GroupScores = workspace.Floats((long)tokens * _groups), KeptGroups = workspace.Ints((long)tokens * _groups),
                Bias = _bias?.View ?? ops.NoFloats, Experts = experts, Weights = weights, Tokens = tokens, ExpertCount = _experts,
                TopK = _topK, Scheme = _scheme, Normalize = _normalize ? 1 : 0, Groups = _groups, TopKGroups = _topKGroups, Scaling = _scaling,
            });

        // shared expert [T, H] and its gate logit [T]
        var shared = ops.NoFloats;
        var sharedGate = ops.NoFloats;
        if (_shared is not null)
        {
            shared = workspace.Floats((long)tokens * _hidden);
            _shared.Forward(ops, x, tokens, shared, workspace, accumulate: false);
            if (_sharedGate is not null)
            {
                sharedGate = workspace.Floats(tokens);
                _sharedGate.Forward(ops, x, tokens, sharedGate, workspace);
            }
        }

        var slots = Math.Min(_experts, pairs);
        var (results, rowOfPair) = (ForcedPath ?? PathFor(tokens)) switch
        {
            ExpertPath.Pairs => RunPairs(ops, workspace, x, experts, pairs),
            ExpertPath.GroupedGemv => RunGroupedGemv(ops, workspace, x, experts, pairs, slots),
            _ => RunGroupedGemm(ops, workspace, x, experts, pairs, slots),
        };
        ops.Combine(
            new CombineArgs
            {
                Results = results, RowOfPair = rowOfPair, Experts = experts, Weights = weights,
                Shared = shared, SharedGate = sharedGate, Hidden = hidden, Width = _hidden, TopK = _topK,
            },
            tokens);
    }

    /// <summary>The expert path every forward takes whatever its tokens, when set (benchmarks compare the paths with it).</summary>
    internal ExpertPath? ForcedPath { get; set; }

    /// <summary>How the experts run for <paramref name="tokens"/> tokens (see <see cref="GpuOptions"/>'s limits).</summary>
    public ExpertPath PathFor(int tokens)
    {
        var pairs = (long)tokens * _topK;
        return tokens <= _pairTokenLimit ? ExpertPath.Pairs
            : pairs <= (long)_gemvRowsLimit * Math.Min(_experts, pairs) ? ExpertPath.GroupedGemv
            : ExpertPath.GroupedGemm;
    }

    /// <summary>Each (token, slot) pair through its expert, read from the device's routing: results [T·k, H] by pair.</summary>
    private (ArrayView<float> Results, ArrayView<int> RowOfPair) RunPairs(DeviceOps ops, Workspace workspace, ArrayView<float> x, ArrayView<int> experts, int pairs)
    {
        var gateUp = workspace.Floats((long)pairs * 2 * _intermediate);
        ops.ExpertDots(_gateUp.View, 2 * _intermediate, x, _topK, experts, pairs, gateUp);
        var act = workspace.Floats((long)pairs * _intermediate);
        ops.SwiGlu(gateUp, act, pairs, _intermediate);
        var results = workspace.Floats((long)pairs * _hidden);
        ops.ExpertDots(_down.View, _hidden, act, 1, experts, pairs, results);
        return (results, ops.NoInts);
    }

    /// <summary>
    /// Tokens grouped by expert, both projections as one grouped GEMV launch each over the device's
    /// permutation: results [T·k, H] by row, rowOfPair mapping (token, slot) pairs to rows.
    /// </summary>
    private (ArrayView<float> Results, ArrayView<int> RowOfPair) RunGroupedGemv(DeviceOps ops, Workspace workspace, ArrayView<float> x, ArrayView<int> experts, int pairs, int slots)
    {
        var grouped = Group(ops, workspace, x, experts, pairs, slots);
        var gateUp = workspace.Floats((long)pairs * 2 * _intermediate);
        ops.ExpertRows(_gateUp.View, 2 * _intermediate, grouped.Rows, grouped.Counts, grouped.Starts, grouped.Active, gateUp);
        var act = workspace.Floats((long)pairs * _intermediate);
        ops.SwiGlu(gateUp, act, pairs, _intermediate);
        var results = workspace.Floats((long)pairs * _hidden);
        ops.ExpertRows(_down.View, _hidden, act, grouped.Counts, grouped.Starts, grouped.Active, results);
        return (results, grouped.RowOfPair);
    }

    /// <summary>
    /// Tokens grouped by expert, one product per routed expert and projection (cuBLAS on CUDA, the
    /// activations split once for all of them): results [T·k, H] by row. Reads the per-expert counts back to size the products.
    /// </summary>
    private (ArrayView<float> Results, ArrayView<int> RowOfPair) RunGroupedGemm(DeviceOps ops, Workspace workspace, ArrayView<float> x, ArrayView<int> experts, int pairs, int slots)
    {
        var grouped = Group(ops, workspace, x, experts, pairs, slots);
        var counts = grouped.Counts.ToHost();
        var gateUp = workspace.Floats((long)pairs * 2 * _intermediate);
        var layout = new RowsByExpert(grouped.Counts, grouped.Starts, experts, grouped.PairOfRow);
        ops.ExpertGemms(_gateUp.View, 2 * _intermediate, grouped.Rows, counts, layout, gateUp, workspace);
        var act = workspace.Floats((long)pairs * _intermediate);
        ops.SwiGlu(gateUp, act, pairs, _intermediate);
        var results = workspace.Floats((long)pairs * _hidden);
        ops.ExpertGemms(_down.View, _hidden, act, counts, layout, results, workspace);
        return (results, grouped.RowOfPair);
    }

    /// <summary>The (token, slot) pairs grouped by expert on the device, and x gathered into their rows [T·k, H].</summary>
    private GroupedRows Group(DeviceOps ops, Workspace workspace, ArrayView<float> x, ArrayView<int> experts, int pairs, int slots)
    {
        var grouped = new GroupedRows(
            Counts: workspace.Ints(_experts), Starts: workspace.Ints(_experts), Active: workspace.Ints(slots),
            RowOfPair: workspace.Ints(pairs), PairOfRow: workspace.Ints(pairs), Rows: workspace.Floats((long)pairs * _hidden));
        ops.CountExperts(experts, grouped.Counts);
        ops.Permute(experts, grouped.Counts, grouped.RowOfPair, grouped.PairOfRow, grouped.Starts, grouped.Active);
        ops.Gather(x, grouped.PairOfRow, grouped.Rows, pairs, _hidden, _topK);
        return grouped;
    }

    /// <summary>Rows grouped by expert: its count and first row, the routed experts by slot (+1, 0 past the last), the row of each pair and the pair of each row, x by row.</summary>
    private readonly record struct GroupedRows(ArrayView<int> Counts, ArrayView<int> Starts, ArrayView<int> Active, ArrayView<int> RowOfPair, ArrayView<int> PairOfRow, ArrayView<float> Rows);

    public void Dispose()
    {
        _router.Dispose();
        _gateUp.Dispose();
        _down.Dispose();
        _shared?.Dispose();
        _sharedGate?.Dispose();
        _bias?.Dispose();
    }
}
