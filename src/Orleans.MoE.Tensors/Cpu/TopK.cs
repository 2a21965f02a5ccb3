namespace Orleans.MoE.Tensors.Cpu;

public static class TopK
{
    /// <summary>
    /// Writes the indices of the <paramref name="indices"/>.Length largest values, largest first
    /// (ties: lower index first). NaN never wins.
    /// </summary>
    public static void Select(ReadOnlySpan<float> values, Span<int> indices)
    {
        var k = indices.Length;
        if (k > values.Length)
        {
            throw new ArgumentException($"top-{k} of {values.Length} values");
        }

        // k is small (2..8 experts): insertion into a sorted prefix beats a heap.
        var count = 0;
        for (var i = 0; i < values.Length; i++)
        {
            var v = values[i];
            if (float.IsNaN(v))
            {
                v = float.NegativeInfinity;
            }

            if (count == k && !(v > Value(values, indices[k - 1])))
            {
                continue;
            }

            var position = count < k ? count++ : k - 1;
            while (position > 0 && v > Value(values, indices[position - 1]))
            {
                indices[position] = indices[position - 1];
                position--;
            }

            indices[position] = i;
        }

        if (count < k)
        {
            throw new ArgumentException("not enough values for top-k");
        }
    }

    private static float Value(ReadOnlySpan<float> values, int index)
    {
        var v = values[index];
        return float.IsNaN(v) ? float.NegativeInfinity : v;
    }
}
