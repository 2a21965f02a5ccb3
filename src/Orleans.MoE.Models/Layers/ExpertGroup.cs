using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Layers;

/// <summary>One expert's share of a grouped computation: rows [Offset, Offset + Count) of the group's input and output.</summary>
public readonly record struct ExpertRows(SwiGluMlp Expert, int Offset, int Count);

/// <summary>
/// The experts of one layer that run in the same step, computed together: one parallel loop over the
/// experts (each expert's products on one core) when there are at least as many experts as cores,
/// else one expert after another with each product spread over the cores. Either way every output
/// row is computed exactly as the expert alone would compute it.
/// </summary>
public static class ExpertGroup
{
    /// <summary>output rows of each expert = expert(input rows); rows are <paramref name="hidden"/> wide.</summary>
    public static void Forward(IReadOnlyList<ExpertRows> experts, ReadOnlySpan<float> input, Span<float> output, int hidden)
    {
        ArgumentNullException.ThrowIfNull(experts);
        if (experts.Count >= CpuParallelism.Degree && experts.Count > 1)
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
