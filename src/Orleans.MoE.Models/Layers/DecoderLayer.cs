using System.Numerics.Tensors;

namespace Orleans.MoE.Models.Layers;

/// <summary>Rows [Offset, Offset + Count) of a batch belong to one sequence, whose cache for this layer is Cache.</summary>
public readonly record struct SequenceSlice(int Offset, int Count, LayerCache Cache);

/// <summary>
/// A pre-norm decoder layer: h += attention(norm(h)); h += ffn(norm(h)). Attention runs per sequence
/// (each has its own cache); the feed-forward runs on the rows of all sequences at once, so an
/// expert sees every token routed to it in the batch.
/// </summary>
public sealed class DecoderLayer(RmsNorm inputNorm, IAttention attention, RmsNorm postAttentionNorm, IFeedForward feedForward)
{
    public RmsNorm InputNorm => inputNorm;

    public IAttention Attention { get; } = attention;

    public RmsNorm PostAttentionNorm => postAttentionNorm;

    public IFeedForward FeedForward { get; } = feedForward;

    public void Forward(Span<float> hidden, IReadOnlyList<SequenceSlice> sequences, LayerTrace? trace)
    {
        var (normed, delta) = AttentionAndNorm(hidden, sequences);
        FeedForward.Forward(normed, hidden.Length / inputNorm.Width, delta, trace);
        TensorPrimitives.Add(hidden, delta, hidden);
    }

    /// <summary>
    /// As <see cref="Forward"/>, with a sparse MoE feed-forward handed to <paramref name="moe"/> (which may
    /// run the experts elsewhere) instead of running it in place. With <paramref name="trace"/>, the
    /// router's logits are computed here too (the executor routes on its own copy of the same router).
    /// </summary>
    public async ValueTask ForwardAsync(float[] hidden, IReadOnlyList<SequenceSlice> sequences, int layer, IMoeExecutor moe, LayerTrace? trace, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        ArgumentNullException.ThrowIfNull(moe);
        var (normed, delta) = AttentionAndNorm(hidden, sequences);
        var rows = hidden.Length / inputNorm.Width;
        if (FeedForward is SparseMoeBlock block)
        {
            if (trace is not null)
            {
                block.Route(normed, rows, trace);
            }

            await moe.ForwardAsync(layer, block, normed, rows, delta, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            FeedForward.Forward(normed, rows, delta, trace);
        }

        TensorPrimitives.Add(hidden, delta, hidden);
    }

    /// <summary>h += attention(norm(h)) per sequence; returns (post-attention norm of h, a buffer for the feed-forward's output).</summary>
    private (float[] Normed, float[] Delta) AttentionAndNorm(Span<float> hidden, IReadOnlyList<SequenceSlice> sequences)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        var width = inputNorm.Width;
        var normed = new float[hidden.Length];
        var delta = new float[hidden.Length];
        inputNorm.Forward(hidden, normed);
        foreach (var sequence in sequences)
        {
            var range = (sequence.Offset * width)..((sequence.Offset + sequence.Count) * width);
            Attention.Forward(normed.AsSpan(range), sequence.Count, sequence.Cache, delta.AsSpan(range));
        }

        TensorPrimitives.Add(hidden, delta, hidden);
        postAttentionNorm.Forward(hidden, normed);
        return (normed, delta);
    }
}

/// <summary>Runs the sparse MoE blocks of a forward pass: in place, or spread over a mesh of expert grains.</summary>
public interface IMoeExecutor
{
    /// <summary>output[T, hidden] = block(x[T, hidden]) for decoder layer <paramref name="layer"/>.</summary>
    ValueTask ForwardAsync(int layer, SparseMoeBlock block, float[] x, int tokens, float[] output, CancellationToken cancellationToken);
}
