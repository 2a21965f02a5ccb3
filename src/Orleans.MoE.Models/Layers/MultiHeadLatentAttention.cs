using System.Numerics.Tensors;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Layers;

/// <summary>
/// DeepSeek's multi-head latent attention. Queries come through a low-rank bottleneck
/// (q_a_proj → RMSNorm → q_b_proj) or one projection; keys and values through a shared latent
/// (kv_a_proj_with_mqa → [latent | shared rope key]; latent → RMSNorm → kv_b_proj → per-head
/// [nope key | value]). Each head's key is [nope key | rope key], RoPE touches only the rope dims.
/// The cache keeps only the normalised latent and the rope key per position (kv_lora_rank +
/// qk_rope_head_dim floats, not heads × (key + value)): kv_b_proj is absorbed instead, the nope
/// query into the latent (q·W_K c = (W_Kᵀ q)·c) and the value projection applied after the weighted
/// sum of latents (Σ w W_V c = W_V Σ w c) — the same products, grouped differently.
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

    // The attention's definition, for backends that run it elsewhere.
    public Linear? QProj => _qProj;
    public Linear? QA => _qA;
    public RmsNorm? QANorm => _qANorm;
    public Linear? QB => _qB;
    public Linear KvA => _kvA;
    public RmsNorm KvANorm => _kvANorm;
    public Linear KvB => _kvB;
    public Linear O => _o;
    public int Heads => _heads;
    public int NopeDim => _nopeDim;
    public int RopeDim => _ropeDim;
    public int ValueDim => _valueDim;
    public int LatentRank => _latentRank;
    public RotaryEmbedding Rope => _rope;
    public float Scale => _scale;

    public (int KeyWidth, int ValueWidth) CacheShape => (_latentRank + _ropeDim, 0);

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

        var width = _latentRank + _ropeDim;
        var latents = _kvA.Forward(x, tokens);
        var start = cache.Length;
        for (var t = 0; t < tokens; t++)
        {
            var position = start + t;
            var row = latents.AsSpan(t * width, width);
            _kvANorm.ForwardInPlace(row[.._latentRank]);
            _rope.Apply(row[_latentRank..], 1, _ropeDim, 0, position);
            _rope.Apply(queries.AsSpan(t * _heads * KeyDim, _heads * KeyDim), _heads, KeyDim, _nopeDim, position);
            cache.Write(position, row, []);
        }

        var absorbed = AbsorbQueries(queries, tokens);
        var contexts = new float[_heads * tokens * _latentRank];
        var work = (long)tokens * _heads * (start + tokens) * (width + _latentRank);
        void Head(int item, float[] scores)
        {
            var (t, h) = (item / _heads, item % _heads);
            var position = start + t;
            var keys = cache.KeyBuffer;
            var latentQuery = absorbed.AsSpan(((t * _heads) + h) * _latentRank, _latentRank);
            var ropeQuery = queries.AsSpan((((t * _heads) + h) * KeyDim) + _nopeDim, _ropeDim);
            var weights = scores.AsSpan(0, position + 1);
            for (var j = 0; j <= position; j++)
            {
                var key = keys.AsSpan(j * width, width);
                weights[j] = (TensorPrimitives.Dot(latentQuery, key[.._latentRank]) + TensorPrimitives.Dot(ropeQuery, key[_latentRank..])) * _scale;
            }

            Activations.Softmax(weights, weights.Length);
            var context = contexts.AsSpan(((h * tokens) + t) * _latentRank, _latentRank);
            for (var j = 0; j <= position; j++)
            {
                TensorPrimitives.MultiplyAdd(keys.AsSpan(j * width, _latentRank), weights[j], context, context);
            }
        }

        var items = tokens * _heads;
        if (work < 1 << 20)
        {
            var scores = new float[start + tokens];
            for (var i = 0; i < items; i++)
            {
                Head(i, scores);
            }
        }
        else
        {
            var chunks = Math.Min(items, CpuParallelism.Degree * 4);
            CpuParallelism.Pool.For(chunks, chunk =>
            {
                var scores = new float[start + tokens];
                for (var i = chunk; i < items; i += chunks)
                {
                    Head(i, scores);
                }
            });
        }

        // Each head's value projection, applied to its weighted latents for all tokens at once.
        var attended = new float[tokens * _heads * _valueDim];
        var perHead = new float[tokens * _valueDim];
        for (var h = 0; h < _heads; h++)
        {
            var valueRows = _kvB.Weight.SliceRows((h * (_nopeDim + _valueDim)) + _nopeDim, _valueDim);
            MatMul.Multiply(contexts.AsSpan(h * tokens * _latentRank, tokens * _latentRank), tokens, valueRows, perHead);
            for (var t = 0; t < tokens; t++)
            {
                perHead.AsSpan(t * _valueDim, _valueDim).CopyTo(attended.AsSpan(((t * _heads) + h) * _valueDim));
            }
        }

        _o.Forward(attended, tokens, output);
    }

    /// <summary>Each head's nope query carried into the latent space: q_lat = W_Kᵀ q_nope (W_K: that head's key rows of kv_b_proj).</summary>
    private float[] AbsorbQueries(float[] queries, int tokens)
    {
        var absorbed = new float[tokens * _heads * _latentRank];
        var row = new float[_latentRank];
        for (var h = 0; h < _heads; h++)
        {
            for (var i = 0; i < _nopeDim; i++)
            {
                _kvB.Weight.ReadRow((h * (_nopeDim + _valueDim)) + i, row);
                for (var t = 0; t < tokens; t++)
                {
                    var target = absorbed.AsSpan(((t * _heads) + h) * _latentRank, _latentRank);
                    TensorPrimitives.MultiplyAdd(row, queries[(((t * _heads) + h) * KeyDim) + i], target, target);
                }
            }
        }

        return absorbed;
    }
}
