namespace Orleans.MoE.Tensors.Cpu;

/// <summary>How a head's rotary dimensions pair up.</summary>
public enum RopeLayout
{
    /// <summary>Dimension i pairs with i + d/2 (the reference's rotate_half; Llama, Mixtral, Qwen, OLMoE).</summary>
    Half,

    /// <summary>Dimension 2i pairs with 2i + 1 (DeepSeek's interleaved layout).</summary>
    Interleaved,
}

/// <summary>
/// Rotary position embedding for heads of <see cref="Dimension"/> rotary dims: a table of
/// cos/sin per position and frequency, computed in f32 as the reference does
/// (angle = position · inv_freq[i], both f32), scaled by an attention factor (YaRN; 1 by default).
/// </summary>
public sealed class RotaryEmbedding
{
    private readonly float[] _inverseFrequencies;
    private readonly float _attentionScaling;
    private Table _table = new([], [], 0);

    public RotaryEmbedding(float[] inverseFrequencies, RopeLayout layout, float attentionScaling = 1f)
    {
        ArgumentNullException.ThrowIfNull(inverseFrequencies);
        _inverseFrequencies = inverseFrequencies;
        Layout = layout;
        _attentionScaling = attentionScaling;
    }

    /// <summary>Rotary dims per head (twice the number of frequencies).</summary>
    public int Dimension => _inverseFrequencies.Length * 2;

    public RopeLayout Layout { get; }

    /// <summary>inv_freq[i] = 1 / base^(2i / dim), in f32 as the reference computes it.</summary>
    public static float[] DefaultInverseFrequencies(int dimension, double theta)
    {
        var result = new float[dimension / 2];
        for (var i = 0; i < result.Length; i++)
        {
            var exponent = (float)(2 * i) / dimension;
            result[i] = 1f / (float)Math.Pow(theta, exponent);
        }

        return result;
    }

    /// <summary>Rotates <paramref name="heads"/> consecutive head vectors of width <paramref name="stride"/>, each starting with its rotary dims at <paramref name="offset"/>.</summary>
    public void Apply(Span<float> x, int heads, int stride, int offset, int position)
    {
        var table = TableFor(position + 1);
        var half = _inverseFrequencies.Length;
        var cos = new ReadOnlySpan<float>(table.Cos, position * half, half);
        var sin = new ReadOnlySpan<float>(table.Sin, position * half, half);
        for (var h = 0; h < heads; h++)
        {
            var v = x.Slice((h * stride) + offset, 2 * half);
            if (Layout == RopeLayout.Half)
            {
                for (var i = 0; i < half; i++)
                {
                    var a = v[i];
                    var b = v[i + half];
                    v[i] = (a * cos[i]) - (b * sin[i]);
                    v[i + half] = (b * cos[i]) + (a * sin[i]);
                }
            }
            else
            {
                for (var i = 0; i < half; i++)
                {
                    var a = v[2 * i];
                    var b = v[(2 * i) + 1];
                    v[2 * i] = (a * cos[i]) - (b * sin[i]);
                    v[(2 * i) + 1] = (b * cos[i]) + (a * sin[i]);
                }
            }
        }
    }

    /// <summary>
    /// cos and sin [positions, Dimension / 2] (row p: position p), times the attention factor: the values
    /// <see cref="Apply"/> rotates by, for backends that rotate elsewhere.
    /// </summary>
    public (float[] Cos, float[] Sin) CosSinTable(int positions)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(positions);
        var half = _inverseFrequencies.Length;
        var cos = new float[positions * half];
        var sin = new float[positions * half];
        for (var p = 0; p < positions; p++)
        {
            for (var i = 0; i < half; i++)
            {
                var angle = (float)p * _inverseFrequencies[i];
                cos[(p * half) + i] = (float)Math.Cos(angle) * _attentionScaling;
                sin[(p * half) + i] = (float)Math.Sin(angle) * _attentionScaling;
            }
        }

        return (cos, sin);
    }

    /// <summary>The cos/sin table, grown (and swapped atomically) when a position passes its end.</summary>
    private Table TableFor(int positions)
    {
        var table = Volatile.Read(ref _table);
        if (positions <= table.Positions)
        {
            return table;
        }

        var capacity = Math.Max(positions, Math.Max(256, table.Positions * 2));
        var (cos, sin) = CosSinTable(capacity);
        table = new Table(cos, sin, capacity);
        Volatile.Write(ref _table, table);
        return table;
    }

    private sealed record Table(float[] Cos, float[] Sin, int Positions);
}
