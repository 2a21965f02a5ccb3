namespace Orleans.MoE.Models.Layers;

/// <summary>
/// One layer's keys and values for every position so far, a row of <see cref="KeyWidth"/> and
/// <see cref="ValueWidth"/> floats per position, growing by doubling.
/// </summary>
public sealed class LayerCache(int keyWidth, int valueWidth, int capacity)
{
    private float[] _keys = new float[Math.Max(1, capacity) * keyWidth];
    private float[] _values = new float[Math.Max(1, capacity) * valueWidth];

    public int KeyWidth { get; } = keyWidth;
    public int ValueWidth { get; } = valueWidth;

    /// <summary>Positions written (attention appends, then <see cref="Commit"/> advances).</summary>
    public int Length { get; private set; }

    /// <summary>The key rows (valid up to the positions written); replaced when the cache grows.</summary>
    internal float[] KeyBuffer => _keys;

    internal float[] ValueBuffer => _values;

    /// <summary>Writes the keys and values of position <paramref name="position"/> (≥ Length).</summary>
    public void Write(int position, ReadOnlySpan<float> key, ReadOnlySpan<float> value)
    {
        EnsureCapacity(position + 1);
        key.CopyTo(_keys.AsSpan(position * KeyWidth, KeyWidth));
        value.CopyTo(_values.AsSpan(position * ValueWidth, ValueWidth));
    }

    public void Commit(int length) => Length = length;

    private void EnsureCapacity(int positions)
    {
        if (positions * KeyWidth <= _keys.Length)
        {
            return;
        }

        var capacity = Math.Max(positions, 2 * (_keys.Length / Math.Max(1, KeyWidth)));
        Array.Resize(ref _keys, capacity * KeyWidth);
        Array.Resize(ref _values, capacity * ValueWidth);
    }
}
