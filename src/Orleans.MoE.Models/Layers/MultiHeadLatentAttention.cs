using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Layers;

/// <summary>
/// DeepSeek's multi-head latent attention. Queries come through a low-rank bottleneck
/// (q_a_proj → RMSNorm → q_b_proj) or one projection; keys and values through a shared latent
/// (kv_a_proj_with_mqa → [latent | shared rope key]; latent → RMSNorm → kv_b_proj → per-head
/// [nope key | value]). Each head's key is [nope key | rope key], RoPE touches only the rope dims.
/// The cache keeps expanded per-head keys and values.
/// </summary>
public sealed class MultiHeadLatentAttention : IAttention
{
    private readonly Linear? _qProj;
    private readonly Linear? _qA;
    private readonly RmsNorm? _qANorm;
    private readonly Linear? _qB;
    private readonly Linear _kvA;
    private readonly RmsNorm _kvANorm;
    private readonly Linear _kvB;
    private readonly Linear _o;
    private readonly int _heads;
    private readonly int _nopeDim;
    private readonly int _ropeDim;
    private readonly int _valueDim;
    private readonly int _latentRank;
    private readonly RotaryEmbedding _rope;
    private readonly float _scale;

    /// <param name="query">Either (q_proj) or (q_a_proj, q_a_layernorm, q_b_proj).</param>
    public MultiHeadLatentAttention(
        (Linear? Proj, Linear? A, RmsNorm? ANorm, Linear? B) query,
        Linear kvA, RmsNorm kvANorm, Linear kvB, Linear o,
        int heads, int nopeDim, int ropeDim, int valueDim, RotaryEmbedding rope, float scale)
    {
        (_qProj, _qA, _qANorm, _qB) = query;
        if (_qProj is null && (_qA is null || _qANorm is null || _qB is null))
        {
            throw new ArgumentException("MLA needs q_proj or the q_a_proj/q_a_layernorm/q_b_proj bottleneck", nameof(query));
        }

        _kvA = kvA;
        _kvANorm = kvANorm;
        _kvB = kvB;
        _o = o;
        _heads = heads;
        _nopeDim = nopeDim;
        _ropeDim = ropeDim;
        _valueDim = valueDim;
        _latentRank = kvANorm.Width;
        _rope = rope;
        _scale = scale;
    }

    private int KeyDim => _nopeDim + _ropeDim;

    public (int KeyWidth, int ValueWidth) CacheShape => (_heads * KeyDim, _heads * _valueDim);

    public void Forward(ReadOnlySpan<float> x, int tokens, LayerCache cache, Span<float> output)
    {
        float[] queries;
        if (_qProj is not null)
        {
            queries = _qProj.Forward(x, tokens);
        }
        else
        {
            var compressed = _qA!.Forward(x, tokens);
            _qANorm!.ForwardInPlace(compressed);
            queries = _qB!.Forward(compressed, tokens);
        }

        var latentWidth = _latentRank + _ropeDim;
        var latentAndRope = _kvA.Forward(x, tokens);
        var latent = new float[tokens * _latentRank];
        for (var t = 0; t < tokens; t++)
        {
            latentAndRope.AsSpan(t * latentWidth, _latentRank).CopyTo(latent.AsSpan(t * _latentRank));
        }

        _kvANorm.ForwardInPlace(latent);
        var keyValue = _kvB.Forward(latent, tokens);

        var start = cache.Length;
        var key = new float[_heads * KeyDim];
        var value = new float[_heads * _valueDim];
        var perHead = _nopeDim + _valueDim;
        for (var t = 0; t < tokens; t++)
        {
            var position = start + t;
            _rope.Apply(queries.AsSpan(t * _heads * KeyDim, _heads * KeyDim), _heads, KeyDim, _nopeDim, position);
            var ropeKey = latentAndRope.AsSpan((t * latentWidth) + _latentRank, _ropeDim);
            _rope.Apply(ropeKey, 1, _ropeDim, 0, position);
            for (var h = 0; h < _heads; h++)
            {
                var source = keyValue.AsSpan((t * _heads * perHead) + (h * perHead), perHead);
                source[.._nopeDim].CopyTo(key.AsSpan(h * KeyDim));
                ropeKey.CopyTo(key.AsSpan((h * KeyDim) + _nopeDim));
                source[_nopeDim..].CopyTo(value.AsSpan(h * _valueDim));
            }

            cache.Write(position, key, value);
        }

        var attended = new float[tokens * _heads * _valueDim];
        ScaledDotProductAttention.Compute(queries, cache, attended, tokens, start, _heads, _heads, KeyDim, _valueDim, _scale, window: null);
        _o.Forward(attended, tokens, output);
    }
}
