using ILGPU;
using ILGPU.Algorithms;

namespace Orleans.MoE.Gpu.Kernels;

/// <summary>Choosing the next token on the device: one group per row of logits, the chosen id written to tokens[row].</summary>
internal static class SamplingKernels
{
    private const int MaxGroup = 1024;

    /// <summary>The index of the largest logit, the lowest index among equals (as IndexOfMax).</summary>
    public static void Argmax(ArrayView<float> logits, ArrayView<int> tokens, int vocab)
    {
        var values = SharedMemory.Allocate<float>(MaxGroup);
        var indices = SharedMemory.Allocate<int>(MaxGroup);
        var row = (long)Grid.IdxX * vocab;
        var best = float.NegativeInfinity;
        var index = -1;
        for (var i = Group.IdxX; i < vocab; i += Group.DimX)
        {
            var v = logits[row + i];
            if (index < 0 || v > best)
            {
                best = v;
                index = i;
            }
        }

        values[Group.IdxX] = best;
        indices[Group.IdxX] = index;
        Group.Barrier();
        if (Group.IdxX == 0)
        {
            for (var i = 1; i < Group.DimX; i++)
            {
                if (indices[i] >= 0 && (indices[0] < 0 || values[i] > values[0] || (values[i] == values[0] && indices[i] < indices[0])))
                {
                    values[0] = values[i];
                    indices[0] = indices[i];
                }
            }

            tokens[Grid.IdxX] = indices[0];
        }
    }

    /// <summary>
    /// A draw from softmax(logits / temperature) by inverse CDF in id order with a uniform u ∈ [0, 1)
    /// per row: each thread sums its contiguous chunk, thread 0 finds the chunk and the id where the
    /// running sum passes u · total.
    /// </summary>
    public static void Sample(ArrayView<float> logits, ArrayView<float> uniforms, ArrayView<int> tokens, int vocab, float temperature)
    {
        var partial = SharedMemory.Allocate<float>(MaxGroup);
        var row = (long)Grid.IdxX * vocab;
        var chunk = (vocab + Group.DimX - 1) / Group.DimX;
        var begin = Group.IdxX * chunk;
        var end = begin + chunk < vocab ? begin + chunk : vocab;
        var localMax = float.NegativeInfinity;
        for (var i = begin; i < end; i++)
        {
            var v = logits[row + i] / temperature;
            localMax = v > localMax ? v : localMax;
        }

        var max = Reductions.GroupMax(localMax);
        var sum = 0f;
        for (var i = begin; i < end; i++)
        {
            sum += XMath.Exp((logits[row + i] / temperature) - max);
        }

        partial[Group.IdxX] = sum;
        Group.Barrier();
        if (Group.IdxX == 0)
        {
            var total = 0f;
            for (var i = 0; i < Group.DimX; i++)
            {
                total += partial[i];
            }

            var target = uniforms[Grid.IdxX] * total;
            var chosen = vocab - 1;
            var running = 0f;
            for (var g = 0; g < Group.DimX; g++)
            {
                if (running + partial[g] <= target && g < Group.DimX - 1)
                {
                    running += partial[g];
                    continue;
                }

                // The draw lands in chunk g: walk its ids (its last id if rounding leaves the sum short).
                var first = g * chunk;
                var last = first + chunk < vocab ? first + chunk : vocab;
                chosen = last > first ? last - 1 : chosen;
                for (var i = first; i < last; i++)
                {
                    running += XMath.Exp((logits[row + i] / temperature) - max);
                    if (running > target)
                    {
                        chosen = i;
                        break;
                    }
                }

                break;
            }

            tokens[Grid.IdxX] = chosen;
        }
    }
}
