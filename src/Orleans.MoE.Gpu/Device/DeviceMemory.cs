namespace Orleans.MoE.Gpu.Device;

/// <summary>A device's memory as placement sees it: its size and what this process holds on it (weights, caches, scratch).</summary>
public readonly record struct DeviceMemory(long TotalBytes, long AllocatedBytes, long WeightBytes)
{
    public long AvailableBytes => Math.Max(0, TotalBytes - AllocatedBytes);
}
