using Orleans.MoE.Models.Layers;

namespace Orleans.MoE.Models;

/// <summary>The keys and values of one sequence for every layer; its length is the number of positions processed.</summary>
public sealed class KvCache
{
    internal KvCache(IReadOnlyList<LayerCache> layers) => Layers = layers;

    public IReadOnlyList<LayerCache> Layers { get; }

    public int Length => Layers.Count == 0 ? 0 : Layers[0].Length;

    /// <summary>Forgets every position from <paramref name="length"/> on (undoes a step that failed part way).</summary>
    public void Truncate(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        foreach (var layer in Layers)
        {
            layer.Commit(Math.Min(layer.Length, length));
        }
    }
}

/// <summary>One sequence's part of a batched step: its new tokens and its cache.</summary>
public readonly record struct SequenceStep(ReadOnlyMemory<int> Tokens, KvCache Cache);

/// <summary>What a forward pass can report besides logits: hidden states after each layer and router logits.</summary>
public sealed class ForwardTrace
{
    /// <summary>[L + 1] entries of [T, hidden]: embeddings, then each layer's output; the last has the final norm applied.</summary>
    public List<float[]> HiddenStates { get; } = [];

    /// <summary>Router logits [T, experts] of each MoE layer, in layer order.</summary>
    public List<float[]> RouterLogits { get; } = [];
}
