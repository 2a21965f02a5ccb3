using ILGPU;

namespace Orleans.MoE.Gpu.Device;

/// <summary>
/// Scratch memory for one forward pass at a time: views carved from one device buffer and given back
/// all at once by <see cref="Reset"/>. A pass that needs more than the buffer holds gets another
/// chunk; the next reset replaces the chunks by one buffer of their total size, so allocation stops
/// once the largest pass has run (decode steps allocate nothing).
/// </summary>
internal sealed class Workspace(GpuDevice device) : IDisposable
{
    private const long Alignment = 64; // floats: 256 bytes, as cudaMalloc aligns
    private readonly List<DeviceBuffer<float>> _chunks = [];
    private long _used;
    private long _total;

    public ArrayView<float> Floats(long length)
    {
        var rounded = (Math.Max(1, length) + Alignment - 1) / Alignment * Alignment;
        var chunk = _chunks.Count == 0 ? null : _chunks[^1];
        if (chunk is null || _used + rounded > chunk.Length)
        {
            chunk = new DeviceBuffer<float>(device, Math.Max(rounded, Math.Max(1 << 16, _total)), isWeights: false);
            _chunks.Add(chunk);
            _total += chunk.Length;
            _used = 0;
        }

        var view = chunk.View.SubView(_used, length);
        _used += rounded;
        return view;
    }

    /// <summary>Ints share the float chunks (both 4 bytes).</summary>
    public ArrayView<int> Ints(long length) => Floats(length).Cast<int>();

    public ArrayView<ushort> UShorts(long length) => Floats((length + 1) / 2).Cast<ushort>().SubView(0, length);

    /// <summary>A point to return to with <see cref="Release"/>: views taken after it are given back (a layer's scratch).</summary>
    public (int Chunks, long Used) Mark() => (_chunks.Count, _used);

    public void Release((int Chunks, long Used) mark)
    {
        if (mark.Chunks == _chunks.Count)
        {
            _used = mark.Used;
        }
    }

    /// <summary>Gives every view back; merges chunks into one for the next pass.</summary>
    public void Reset()
    {
        if (_chunks.Count > 1)
        {
            foreach (var chunk in _chunks)
            {
                chunk.Dispose();
            }

            _chunks.Clear();
            _chunks.Add(new DeviceBuffer<float>(device, _total, isWeights: false));
        }

        _used = 0;
    }

    public void Dispose()
    {
        foreach (var chunk in _chunks)
        {
            chunk.Dispose();
        }

        _chunks.Clear();
    }
}
