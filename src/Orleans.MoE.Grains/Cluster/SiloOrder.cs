namespace Orleans.MoE.Grains.Cluster;

/// <summary>The order silos are listed and numbered in (S1, S2, ...): by host address, then port, then generation.</summary>
public static class SiloOrder
{
    public static IEnumerable<SiloAddress> Sort(IEnumerable<SiloAddress> silos) =>
        silos.OrderBy(s => s.Endpoint.Address.GetAddressBytes(), ByteOrder.Instance).ThenBy(s => s.Endpoint.Port).ThenBy(s => s.Generation);

    private sealed class ByteOrder : IComparer<byte[]>
    {
        public static ByteOrder Instance { get; } = new();

        public int Compare(byte[]? x, byte[]? y) => (x ?? []).AsSpan().SequenceCompareTo(y ?? []);
    }
}
