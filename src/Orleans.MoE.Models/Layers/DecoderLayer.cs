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
    public IAttention Attention { get; } = attention;

    public IFeedForward FeedForward { get; } = feedForward;

    public void Forward(Span<float> hidden, IReadOnlyList<SequenceSlice> sequences, LayerTrace? trace)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        var width = inputNorm.Width;
        var rows = hidden.Length / width;
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
        FeedForward.Forward(normed, rows, delta, trace);
        TensorPrimitives.Add(hidden, delta, hidden);
    }
}
