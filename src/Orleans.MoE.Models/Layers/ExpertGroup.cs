using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Layers;

/// <summary>One expert's share of a grouped computation: rows [Offset, Offset + Count) of the group's input and output.</summary>
public readonly record struct ExpertRows(SwiGluMlp Expert, int Offset, int Count);

/// <summary>
/// The experts of one layer that run in the same step, computed together: one parallel loop over the
/// experts (each expert's products on one core) when there are at least as many experts as cores and
/// enough work to pay for waking them, else one expert after another (each product spread over the
/// cores when it is large). Either way every output row is computed exactly as the expert alone would
/// compute it.
/// </summary>
public static class ExpertGroup
{
    /// <summary>Below this many multiply-adds in all (as for a single product) the group runs on the calling thread.</summary>
    private const long MinParallelWork = 1 << 20;

    /// <summary>output rows of each expert = expert(input rows); rows are <paramref name="hidden"/> wide.</summary>
    public static void Forward(IReadOnlyList<ExpertRows> experts, ReadOnlySpan<float> input, Span<float> output, int hidden)
    {
        ArgumentNullException.ThrowIfNull(experts);
        var work = experts.Sum(e => (long)e.Count * e.Expert.WeightElements);
        if (experts.Count >= CpuParallelism.Degree && experts.Count > 1 && work >= MinParallelWork)
        {
            unsafe
            {
                fixed (float* inputPointer = input)
                fixed (float* outputPointer = output)
                {
                    var (x, y, length) = ((nint)inputPointer, (nint)outputPointer, input.Length);
                    CpuParallelism.Pool.For(experts.Count, i =>
                    {
                        var rows = experts[i];
                        var range = (rows.Offset * hidden)..((rows.Offset + rows.Count) * hidden);
                        rows.Expert.Forward(new ReadOnlySpan<float>((float*)x, length)[range], rows.Count, new Span<float>((float*)y, length)[range]);
                    });
                }
            }

            return;
        }

        foreach (var rows in experts)
        {
            var range = (rows.Offset * hidden)..((rows.Offset + rows.Count) * hidden);
            rows.Expert.Forward(input[range], rows.Count, output[range]);
        }
    }
}
