using System.Buffers;
using System.Runtime.InteropServices;
using Orleans.MoE.Runtime.Serialization;

namespace Orleans.MoE.Grains.Gates;

/// <summary>Tensor payloads over float arrays without copying them.</summary>
internal static class FloatPayload
{
    /// <summary>A payload whose bytes are <paramref name="values"/> (which must not change until the call completes).</summary>
    public static TensorPayload Over(float[] values, int offset, int count, params int[] shape) =>
        new(new FloatBytes(values).Memory.Slice(offset * sizeof(float), count * sizeof(float)), shape);

    private sealed class FloatBytes(float[] values) : MemoryManager<byte>
    {
        public override Span<byte> GetSpan() => MemoryMarshal.AsBytes(values.AsSpan());

        public override unsafe MemoryHandle Pin(int elementIndex = 0)
        {
            var handle = GCHandle.Alloc(values, GCHandleType.Pinned);
            return new MemoryHandle((byte*)handle.AddrOfPinnedObject() + elementIndex, handle, this);
        }

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
        }
    }
}
