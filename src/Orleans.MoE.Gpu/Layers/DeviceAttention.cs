using ILGPU;
using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Gpu.Kernels;
using Orleans.MoE.Models.Layers;

namespace Orleans.MoE.Gpu.Layers;

/// <summary>
/// Grouped-query attention on the device (Mixtral, Qwen2/3-MoE, OLMoE): q, k, v projections (k and v
/// written straight into the cache rows), optional q/k RMSNorm per head or over the projection,
/// optional clipping, RoPE, causal attention over the cache, output projection added to the residual.
/// </summary>
internal sealed class DeviceAttention : IDeviceAttention
{
    private readonly DeviceLinear _q;
    private readonly DeviceLinear _k;
    private readonly DeviceLinear _v;
    private readonly DeviceLinear _o;
    private readonly DeviceNorm? _qNorm;
    private readonly DeviceNorm? _kNorm;
    private readonly QueryKeyNorm _norm;
    private readonly float? _clip;
    private readonly int? _window;
    private readonly int _heads;
    private readonly int _kvHeads;
    private readonly int _headDim;
    private readonly float _scale;

    public DeviceAttention(GpuDevice device, GroupedQueryAttention attention, RopeTable rope)
    {
        _q = new DeviceLinear(device, attention.Q);
        _k = new DeviceLinear(device, attention.K);
        _v = new DeviceLinear(device, attention.V);
        _o = new DeviceLinear(device, attention.O);
        _qNorm = attention.QNorm is { } qn ? new DeviceNorm(device, qn) : null;
        _kNorm = attention.KNorm is { } kn ? new DeviceNorm(device, kn) : null;
        _norm = attention.Norm;
        _clip = attention.Clip;
        _window = attention.SlidingWindow;
        (_heads, _kvHeads, _headDim, _scale) = (attention.Heads, attention.KeyValueHeads, attention.HeadDim, attention.Scale);
        Rope = rope;
        if (2 * rope.Half > _headDim)
        {
            throw new NotSupportedException($"rotary dims {2 * rope.Half} exceed the head dim {_headDim}");
        }
    }

    public (int KeyWidth, int ValueWidth) CacheShape => (_kvHeads * _headDim, _kvHeads * _headDim);

    public RopeTable Rope { get; }

    public void Forward(in DeviceStep step, ArrayView<float> x, ArrayView<float> keys, ArrayView<float> values, ArrayView<float> hidden)
    {
        var (ops, workspace, tokens, start) = step;
        var kvWidth = _kvHeads * _headDim;
        var qWidth = _heads * _headDim;

        // q [T, heads·d]; k, v [T, kvHeads·d] into cache rows start..start+T
        var q = workspace.Floats((long)tokens * qWidth);
        var newKeys = keys.SubView((long)start * kvWidth, (long)tokens * kvWidth);
        var newValues = values.SubView((long)start * kvWidth, (long)tokens * kvWidth);
        _q.Forward(ops, x, tokens, q, workspace);
        _k.Forward(ops, x, tokens, newKeys, workspace);
        _v.Forward(ops, x, tokens, newValues, workspace);
        if (_norm == QueryKeyNorm.PerHead)
        {
            _qNorm!.Forward(ops, q, q, tokens * _heads);
            _kNorm!.Forward(ops, newKeys, newKeys, tokens * _kvHeads);
        }
        else if (_norm == QueryKeyNorm.WholeProjection)
        {
            _qNorm!.Forward(ops, q, q, tokens);
            _kNorm!.Forward(ops, newKeys, newKeys, tokens);
        }

        if (_clip is { } clip)
        {
            ops.Clamp(q, clip);
            ops.Clamp(newKeys, clip);
            ops.Clamp(newValues, clip);
        }

        ops.Rope(RopeArgs(q, _heads, qWidth, start), tokens);
        ops.Rope(RopeArgs(newKeys, _kvHeads, kvWidth, start), tokens);

        // attended [T, heads, d] over positions 0..start+t
        var attended = workspace.Floats((long)tokens * qWidth);
        ops.Attention(
            new AttentionArgs
            {
                Q = q, K = keys, V = values, Output = attended,
                Heads = _heads, HeadsPerKv = _heads / _kvHeads, KeyDim = _headDim, ValueDim = _headDim,
                KRowStride = kvWidth, KHeadStride = _headDim, VRowStride = kvWidth, VHeadStride = _headDim,
                Start = start, Window = _window ?? 0, Scale = _scale,
            },
            tokens,
            workspace);
        _o.Forward(ops, attended, tokens, hidden, workspace, accumulate: true);
    }

    private RopeArgs RopeArgs(ArrayView<float> x, int heads, int rowStride, int start) => new()
    {
        X = x, Cos = Rope.Cos, Sin = Rope.Sin, Heads = heads, Half = Rope.Half, RowStride = rowStride,
        HeadStride = _headDim, Offset = 0, Start = start, Interleaved = Rope.Interleaved ? 1 : 0,
    };

    public void Dispose()
    {
        _q.Dispose();
        _k.Dispose();
        _v.Dispose();
        _o.Dispose();
        _qNorm?.Dispose();
        _kNorm?.Dispose();
    }
}

/// <summary>
/// DeepSeek's multi-head latent attention on the device with the absorbed latent cache: the cache
/// keeps [normalised latent | rotated rope key] per position (kv_lora_rank + qk_rope_head_dim);
/// each head's nope query is carried into the latent space through its key rows of kv_b_proj, attends
/// over the cache rows, and its weighted latent goes through its value rows of kv_b_proj.
/// </summary>
internal sealed class DeviceLatentAttention : IDeviceAttention
{
    private readonly DeviceLinear? _qProj;
    private readonly DeviceLinear? _qA;
    private readonly DeviceNorm? _qANorm;
    private readonly DeviceLinear? _qB;
    private readonly DeviceLinear _kvA;
    private readonly DeviceNorm _kvANorm;
    private readonly DeviceLinear _kvB;
    private readonly DeviceLinear _o;
    private readonly int _heads;
    private readonly int _nope;
    private readonly int _ropeDim;
    private readonly int _valueDim;
    private readonly int _rank;
    private readonly float _scale;

    public DeviceLatentAttention(GpuDevice device, MultiHeadLatentAttention attention, RopeTable rope)
    {
        _qProj = attention.QProj is { } qp ? new DeviceLinear(device, qp) : null;
        _qA = attention.QA is { } qa ? new DeviceLinear(device, qa) : null;
        _qANorm = attention.QANorm is { } qn ? new DeviceNorm(device, qn) : null;
        _qB = attention.QB is { } qb ? new DeviceLinear(device, qb) : null;
        _kvA = new DeviceLinear(device, attention.KvA);
        _kvANorm = new DeviceNorm(device, attention.KvANorm);
        _kvB = new DeviceLinear(device, attention.KvB);
        _o = new DeviceLinear(device, attention.O);
        (_heads, _nope, _ropeDim, _valueDim, _rank, _scale) =
            (attention.Heads, attention.NopeDim, attention.RopeDim, attention.ValueDim, attention.LatentRank, attention.Scale);
        Rope = rope;
        if (2 * rope.Half != _ropeDim)
        {
            throw new NotSupportedException($"rotary dims {2 * rope.Half} differ from qk_rope_head_dim {_ropeDim}");
        }
    }

    public (int KeyWidth, int ValueWidth) CacheShape => (_rank + _ropeDim, 0);

    public RopeTable Rope { get; }

    public void Forward(in DeviceStep step, ArrayView<float> x, ArrayView<float> keys, ArrayView<float> values, ArrayView<float> hidden)
    {
        var (ops, workspace, tokens, start) = step;
        var keyDim = _nope + _ropeDim;
        var width = _rank + _ropeDim;

        // queries [T, heads, nope + rope]: one projection or the low-rank bottleneck
        var q = workspace.Floats((long)tokens * _heads * keyDim);
        if (_qProj is not null)
        {
            _qProj.Forward(ops, x, tokens, q, workspace);
        }
        else
        {
            var compressed = workspace.Floats((long)tokens * _qA!.OutFeatures);
            _qA.Forward(ops, x, tokens, compressed, workspace);
            _qANorm!.Forward(ops, compressed, compressed, tokens);
            _qB!.Forward(ops, compressed, tokens, q, workspace);
        }

        // cache rows [latent | rope key] for positions start..start+T: normalise the latent, rotate the key
        var rows = keys.SubView((long)start * width, (long)tokens * width);
        _kvA.Forward(ops, x, tokens, rows, workspace);
        _kvANorm.Forward(ops, rows, rows, tokens, width, width);
        ops.Rope(RopeArgs(rows, 1, width, 0, _rank, start), tokens);
        ops.Rope(RopeArgs(q, _heads, _heads * keyDim, keyDim, _nope, start), tokens);

        // absorbed queries [T, heads, rank + rope] attend over the cache rows; context [T, heads, rank]
        var absorbed = workspace.Floats((long)tokens * _heads * width);
        ops.MlaQuery(_kvB.Weight, q, absorbed, tokens, _heads, _rank, _ropeDim, _nope, _valueDim);
        var context = workspace.Floats((long)tokens * _heads * _rank);
        ops.Attention(
            new AttentionArgs
            {
                Q = absorbed, K = keys, V = keys, Output = context,
                Heads = _heads, HeadsPerKv = _heads, KeyDim = width, ValueDim = _rank,
                KRowStride = width, KHeadStride = 0, VRowStride = width, VHeadStride = 0,
                Start = start, Window = 0, Scale = _scale,
            },
            tokens,
            workspace);

        // values [T, heads, v] through each head's value rows of kv_b_proj, then o_proj into the residual
        var attended = workspace.Floats((long)tokens * _heads * _valueDim);
        ops.MlaValue(_kvB.Weight, context, attended, tokens, _heads, _rank, _nope, _valueDim);
        _o.Forward(ops, attended, tokens, hidden, workspace, accumulate: true);
    }

    private RopeArgs RopeArgs(ArrayView<float> x, int heads, int rowStride, int headStride, int offset, int start) => new()
    {
        X = x, Cos = Rope.Cos, Sin = Rope.Sin, Heads = heads, Half = Rope.Half, RowStride = rowStride,
        HeadStride = headStride, Offset = offset, Start = start, Interleaved = Rope.Interleaved ? 1 : 0,
    };

    public void Dispose()
    {
        _qProj?.Dispose();
        _qA?.Dispose();
        _qANorm?.Dispose();
        _qB?.Dispose();
        _kvA.Dispose();
        _kvANorm.Dispose();
        _kvB.Dispose();
        _o.Dispose();
    }
}
