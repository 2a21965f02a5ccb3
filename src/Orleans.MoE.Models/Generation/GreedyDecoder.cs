using System.Numerics.Tensors;

namespace Orleans.MoE.Models.Generation;

/// <summary>Argmax decoding through the KV cache, with no stop token: the reference's greedy <c>generate</c>.</summary>
public static class GreedyDecoder
{
    public static int[] Generate(CausalLanguageModel model, int[] prompt, int newTokens)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompt);
        var cache = model.CreateCache(prompt.Length + newTokens);
        var generated = new int[newTokens];
        var logits = model.Forward(prompt, cache);
        for (var i = 0; i < newTokens; i++)
        {
            generated[i] = TensorPrimitives.IndexOfMax(logits);
            if (i + 1 < newTokens)
            {
                logits = model.Forward([generated[i]], cache);
            }
        }

        return generated;
    }
}
