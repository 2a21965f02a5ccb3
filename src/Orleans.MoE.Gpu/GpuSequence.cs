using ILGPU;
using Orleans.MoE.Gpu.Device;

namespace Orleans.MoE.Gpu;

/// <summary>
/// One sequence's KV cache on the device: for every layer a row of keys (and values) per position,
/// growing by doubling. Owned by the caller; dispose it to free its device memory.
/// </summary>
public sealed class GpuSequence : IDisposable
{
    private readonly GpuDevice _device;
    private readonly (int KeyWidth, int ValueWidth)[] _shapes;
    private readonly DeviceBuffer<float>?[] _keys;
    private readonly DeviceBuffer<float>?[] _values;

    internal GpuSequence(GpuDevice device, (int KeyWidth, int ValueWidth)[] shapes, int capacity)
    {
        _device = device;
        _shapes = shapes;
        _keys = new DeviceBuffer<float>?[shapes.Length];
        _values = new DeviceBuffer<float>?[shapes.Length];
        Grow(Math.Max(1, capacity));
    }

    /// <summary>Positions processed.</summary>
    public int Length { get; internal set; }

    public int Capacity { get; private set; }

    public long DeviceBytes => _keys.Sum(k => k?.Bytes ?? 0) + _values.Sum(v => v?.Bytes ?? 0);

    internal ArrayView<float> Keys(int layer) => _keys[layer]!.View;

    internal ArrayView<float> Values(int layer) => _values[layer]?.View ?? default;

    /// <summary>Makes room for <paramref name="positions"/> positions, keeping what is cached.</summary>
    internal void EnsureCapacity(int positions)
    {
        if (positions > Capacity)
        {
            Grow(Math.Max(positions, 2 * Capacity));
        }
    }

    /// <summary>Forgets positions from <paramref name="length"/> on.</summary>
    public void Truncate(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Length = Math.Min(Length, length);
    }

    private void Grow(int capacity)
    {
        for (var l = 0; l < _shapes.Length; l++)
        {
            _keys[l] = Replace(_keys[l], (long)capacity * _shapes[l].KeyWidth, (long)Length * _shapes[l].KeyWidth);
            if (_shapes[l].ValueWidth > 0)
            {
                _values[l] = Replace(_values[l], (long)capacity * _shapes[l].ValueWidth, (long)Length * _shapes[l].ValueWidth);
            }
        }

        Capacity = capacity;
    }

    private DeviceBuffer<float> Replace(DeviceBuffer<float>? old, long length, long keep)
    {
        var buffer = _device.Allocate<float>(length);
        if (old is not null)
        {
            if (keep > 0)
            {
                ILGPU.Runtime.ArrayViewExtensions.CopyTo(old.View.SubView(0, keep), buffer.View.SubView(0, keep));
            }

            _device.Synchronize();
            old.Dispose();
        }

        return buffer;
    }

    public void Dispose()
    {
        foreach (var buffer in _keys.Concat(_values))
        {
            buffer?.Dispose();
        }
    }
}
