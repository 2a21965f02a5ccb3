using Orleans.MoE.Models.Checkpoints;
using Orleans.MoE.Models.Configuration;
using Orleans.MoE.Models.Layers;
using Orleans.MoE.Tensors;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models;

/// <summary>
/// A decoder-only MoE language model on the CPU: embeddings, decoder layers, final norm, LM head.
/// Built by an architecture from a checkpoint whose mapping it keeps open; weights stay in their
/// stored dtype. Thread-safe for concurrent forwards on different caches.
/// </summary>
public sealed class CausalLanguageModel : IDisposable
{
    private readonly Checkpoint _checkpoint;
    private readonly WeightMatrix _embedding;
    private readonly RmsNorm _norm;
    private readonly WeightMatrix _lmHead;

    public CausalLanguageModel(ModelConfig config, Checkpoint checkpoint, WeightMatrix embedding, IReadOnlyList<DecoderLayer> layers, RmsNorm norm, WeightMatrix lmHead)
    {
        ArgumentNullException.ThrowIfNull(layers);
        Config = config;
        _checkpoint = checkpoint;
        _embedding = embedding;
        Layers = layers;
        _norm = norm;
        _lmHead = lmHead;
    }

    public ModelConfig Config { get; }

    public IReadOnlyList<DecoderLayer> Layers { get; }

    public int HiddenSize => _embedding.Cols;

    public int VocabSize => _lmHead.Rows;

    public Checkpoint Checkpoint => _checkpoint;

    /// <summary>The token embeddings [vocab, hidden], the final norm and the LM head [vocab, hidden], for other backends.</summary>
    public WeightMatrix Embedding => _embedding;

    public RmsNorm Norm => _norm;

    public WeightMatrix LmHead => _lmHead;

    public KvCache CreateCache(int capacity = 256) =>
        new(Layers.Select(l => new LayerCache(l.Attention.CacheShape.KeyWidth, l.Attention.CacheShape.ValueWidth, capacity)).ToArray());

    /// <summary>
    /// Runs <paramref name="tokens"/> at the positions after what <paramref name="cache"/> holds, appending
    /// to it. Returns logits [T, vocab] when <paramref name="allLogits"/>, else [1, vocab] for the last token.
    /// </summary>
    public float[] Forward(ReadOnlySpan<int> tokens, KvCache cache, bool allLogits = false, ForwardTrace? trace = null) =>
        ForwardBatch([new SequenceStep(tokens.ToArray(), cache)], allLogits, trace)[0];

    /// <summary>
    /// One step for several sequences together (continuous batching): each appends its tokens to its own
    /// cache; the feed-forward layers see all their tokens at once. Returns each sequence's logits as
    /// <see cref="Forward"/> does.
    /// </summary>
    public float[][] ForwardBatch(IReadOnlyList<SequenceStep> steps, bool allLogits = false, ForwardTrace? trace = null)
    {
        var (hidden, slices) = Embed(steps);
        trace?.HiddenStates.Add((float[])hidden.Clone());
        var layerTrace = trace is null ? null : new LayerTrace();
        for (var l = 0; l < Layers.Count; l++)
        {
            var sequences = LayerSlices(slices, l);
            Layers[l].Forward(hidden, sequences, layerTrace);
            Commit(sequences);
            Record(trace, layerTrace, hidden);
        }

        _norm.ForwardInPlace(hidden);
        if (trace is not null)
        {
            trace.HiddenStates[^1] = (float[])hidden.Clone();
        }

        return Logits(hidden, slices, allLogits);
    }

    /// <summary>
    /// <see cref="ForwardBatch"/> with the sparse MoE blocks run by <paramref name="moe"/> (for example on
    /// expert grains across silos); attention, dense layers and the LM head run here.
    /// </summary>
    public async Task<float[][]> ForwardBatchAsync(IReadOnlyList<SequenceStep> steps, IMoeExecutor moe, bool allLogits = false, ForwardTrace? trace = null, CancellationToken cancellationToken = default)
    {
        var (hidden, slices) = Embed(steps);
        trace?.HiddenStates.Add((float[])hidden.Clone());
        var layerTrace = trace is null ? null : new LayerTrace();
        for (var l = 0; l < Layers.Count; l++)
        {
            var sequences = LayerSlices(slices, l);
            await Layers[l].ForwardAsync(hidden, sequences, l, moe, layerTrace, cancellationToken).ConfigureAwait(false);
            Commit(sequences);
            Record(trace, layerTrace, hidden);
        }

        _norm.ForwardInPlace(hidden);
        if (trace is not null)
        {
            trace.HiddenStates[^1] = (float[])hidden.Clone();
        }

        return Logits(hidden, slices, allLogits);
    }

    /// <summary>A layer's output and router logits into <paramref name="trace"/> (when tracing).</summary>
    private static void Record(ForwardTrace? trace, LayerTrace? layerTrace, float[] hidden)
    {
        if (trace is null)
        {
            return;
        }

        trace.HiddenStates.Add((float[])hidden.Clone());
        if (layerTrace!.RouterLogits is { } routerLogits)
        {
            trace.RouterLogits.Add(routerLogits);
            layerTrace.RouterLogits = null;
        }
    }

    /// <summary>The embeddings of every step's tokens, one row per token, and each sequence's rows.</summary>
    private (float[] Hidden, List<(int Offset, int Count, KvCache Cache)> Slices) Embed(IReadOnlyList<SequenceStep> steps)
    {
        ArgumentNullException.ThrowIfNull(steps);
        var hiddenSize = HiddenSize;
        var slices = new List<(int Offset, int Count, KvCache Cache)>(steps.Count);
        var rows = 0;
        foreach (var step in steps)
        {
            if (step.Tokens.Length == 0)
            {
                throw new ArgumentException("a sequence has no tokens to run", nameof(steps));
            }

            if (slices.Any(x => x.Cache == step.Cache))
            {
                throw new ArgumentException("a cache appears twice in one batch", nameof(steps));
            }

            slices.Add((rows, step.Tokens.Length, step.Cache));
            rows += step.Tokens.Length;
        }

        var hidden = new float[rows * hiddenSize];
        for (var s = 0; s < steps.Count; s++)
        {
            var tokens = steps[s].Tokens.Span;
            for (var t = 0; t < tokens.Length; t++)
            {
                var id = tokens[t];
                if ((uint)id >= (uint)_embedding.Rows)
                {
                    throw new ArgumentOutOfRangeException(nameof(steps), $"token id {id} outside the vocabulary [0, {_embedding.Rows})");
                }

                _embedding.ReadRow(id, hidden.AsSpan((slices[s].Offset + t) * hiddenSize, hiddenSize));
            }
        }

        return (hidden, slices);
    }

    private static SequenceSlice[] LayerSlices(List<(int Offset, int Count, KvCache Cache)> slices, int layer) =>
        slices.Select(x => new SequenceSlice(x.Offset, x.Count, x.Cache.Layers[layer])).ToArray();

    private static void Commit(SequenceSlice[] sequences)
    {
        foreach (var sequence in sequences)
        {
            sequence.Cache.Commit(sequence.Cache.Length + sequence.Count);
        }
    }

    private float[][] Logits(float[] hidden, List<(int Offset, int Count, KvCache Cache)> slices, bool allLogits)
    {
        var hiddenSize = HiddenSize;
        return slices.Select(x =>
        {
            var count = allLogits ? x.Count : 1;
            var first = x.Offset + x.Count - count;
            var logits = new float[count * VocabSize];
            MatMul.Multiply(hidden.AsSpan(first * hiddenSize, count * hiddenSize), count, _lmHead, logits);
            return logits;
        }).ToArray();
    }

    /// <summary>Bytes of weights one token reads: attention, dense MLPs, routers, k routed and shared experts, embedding row, LM head.</summary>
    public long WeightBytesPerToken()
    {
        long total = _lmHead.ByteCount + ((long)_embedding.Cols * _embedding.DType.Size());
        foreach (var layer in Layers)
        {
            total += layer.FeedForward switch
            {
                SparseMoeBlock moe => moe.Router.Weight.ByteCount
                    + (moe.TopK * moe.Experts.Average(e => e.WeightBytes) is var experts ? (long)experts : 0)
                    + (moe.SharedExpert?.WeightBytes ?? 0),
                SwiGluMlp mlp => mlp.WeightBytes,
                _ => 0,
            };
        }

        return total + AttentionBytes();
    }

    /// <summary>
    /// Weights one token multiplies (multiply-adds of its matrix products): as <see cref="WeightBytesPerToken"/>,
    /// in elements, without the embedding row (read, not multiplied).
    /// </summary>
    public long WeightElementsPerToken()
    {
        long total = (long)_lmHead.Rows * _lmHead.Cols;
        foreach (var layer in Layers)
        {
            total += layer.FeedForward switch
            {
                SparseMoeBlock moe => ((long)moe.Router.Weight.Rows * moe.Router.Weight.Cols)
                    + (long)(moe.TopK * moe.Experts.Average(e => e.WeightElements))
                    + (moe.SharedExpert?.WeightElements ?? 0),
                SwiGluMlp mlp => mlp.WeightElements,
                _ => 0,
            };
        }

        return total + _checkpoint.TensorNames.Where(n => n.Contains(".self_attn.", StringComparison.Ordinal) && n.EndsWith(".weight", StringComparison.Ordinal))
            .Select(_checkpoint.Entry).Where(e => e.Shape.Length == 2).Sum(e => e.ElementCount);
    }

    public void Dispose() => _checkpoint.Dispose();

    private long AttentionBytes()
    {
        // Every attention weight is read once per token: all checkpoint tensors under self_attn.
        return _checkpoint.TensorNames.Where(n => n.Contains(".self_attn.", StringComparison.Ordinal))
            .Sum(n => _checkpoint.Entry(n).ByteLength);
    }
}
