using ILGPU;
using ILGPU.Runtime;

namespace Orleans.MoE.Gpu.Device;

/// <summary>
/// Device memory owned by one object (a matrix of weights, a cache, a workspace): allocated through
/// its <see cref="GpuDevice"/>, counted there, freed on <see cref="Dispose"/>.
/// </summary>
public sealed class DeviceBuffer<T> : IDisposable
    where T : unmanaged
{
    private readonly GpuDevice _device;
    private readonly MemoryBuffer1D<T, Stride1D.Dense> _buffer;
    private readonly bool _isWeights;
    private bool _disposed;

    internal DeviceBuffer(GpuDevice device, long length, bool isWeights)
    {
        _device = device;
        _isWeights = isWeights;
        _buffer = device.Accelerator.Allocate1D<T>(Math.Max(1, length));
        Length = length;
        device.Track(Bytes, isWeights);
    }

    public long Length { get; }

    public unsafe long Bytes => Math.Max(1, Length) * sizeof(T);

    /// <summary>The whole buffer as a kernel argument.</summary>
    public ArrayView<T> View => _buffer.View.SubView(0, Length);

    /// <summary>The device address of element <paramref name="index"/> (for cuBLAS).</summary>
    public unsafe nint Address(long index = 0) => _buffer.NativePtr + (nint)(index * sizeof(T));

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _buffer.Dispose();
        _device.Track(-Bytes, _isWeights);
    }
}
