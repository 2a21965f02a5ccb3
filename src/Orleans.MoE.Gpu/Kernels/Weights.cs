using ILGPU;

namespace Orleans.MoE.Gpu.Kernels;

/// <summary>
/// Weights as kernels read them: element <c>i</c> widened to f32. Kernels are generic over the
/// storage (f32 or bf16, as the checkpoint stores it), so one kernel body serves both.
/// </summary>
internal interface IWeights
{
    float Get(long index);

    /// <summary>Elements [index, index + 4) (index a multiple of 4).</summary>
    void Get4(long index, out float a, out float b, out float c, out float d);
}

/// <summary>f32 weights (f32 and f16 checkpoints; f16 is widened on upload, exactly).</summary>
internal readonly struct F32Weights(ArrayView<float> data) : IWeights
{
    public readonly ArrayView<float> Data = data;

    public float Get(long index) => Data[index];

    public void Get4(long index, out float a, out float b, out float c, out float d)
    {
        a = Data[index];
        b = Data[index + 1];
        c = Data[index + 2];
        d = Data[index + 3];
    }
}

/// <summary>bf16 weights, kept as stored (the upper half of an f32: widening is a shift).</summary>
internal readonly struct Bf16Weights(ArrayView<ushort> data) : IWeights
{
    public readonly ArrayView<ushort> Data = data;

    public float Get(long index) => Interop.IntAsFloat((uint)Data[index] << 16);

    /// <summary>One 8-byte load of four bf16 values (the view starts 8-byte aligned).</summary>
    public void Get4(long index, out float a, out float b, out float c, out float d)
    {
        var packed = Data.Cast<ulong>()[index >> 2];
        a = Interop.IntAsFloat((uint)(packed << 16) & 0xFFFF0000u);
        b = Interop.IntAsFloat((uint)packed & 0xFFFF0000u);
        c = Interop.IntAsFloat((uint)(packed >> 16) & 0xFFFF0000u);
        d = Interop.IntAsFloat((uint)(packed >> 32) & 0xFFFF0000u);
    }
}
