using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Orleans.MoE.Tensors;

/// <summary>Conversions between stored dtypes and f32.</summary>
public static unsafe class DTypeConvert
{
    /// <summary>bf16 is the upper half of an f32: widening is a shift.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float BFloat16ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>f32 to bf16 with round-to-nearest-even (as PyTorch does); NaN stays NaN.</summary>
    public static ushort SingleToBFloat16(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            return (ushort)((bits >> 16) | 0x40);
        }

        var rounding = 0x7FFFu + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }

    /// <summary>Converts <paramref name="destination"/>.Length elements of <paramref name="dtype"/> at <paramref name="source"/> to f32.</summary>
    public static void ToSingle(nint source, DType dtype, Span<float> destination)
    {
        var count = destination.Length;
        switch (dtype)
        {
            case DType.F32:
                new ReadOnlySpan<float>((void*)source, count).CopyTo(destination);
                break;
            case DType.F16:
                TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>((void*)source, count), destination);
                break;
            case DType.BF16:
                BFloat16ToSingle(new ReadOnlySpan<ushort>((void*)source, count), destination);
                break;
            default:
                throw new NotSupportedException($"cannot convert {dtype} to f32");
        }
    }

    public static void BFloat16ToSingle(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        if (destination.Length < source.Length)
        {
            throw new ArgumentException("destination too short", nameof(destination));
        }

        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref var src = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(source);
            ref var dst = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(destination);
            for (; i <= source.Length - 16; i += 16)
            {
                var packed = Vector256.LoadUnsafe(ref src, (nuint)i);
                var lower = Vector256.ShiftLeft(Vector256.WidenLower(packed), 16).AsSingle();
                var upper = Vector256.ShiftLeft(Vector256.WidenUpper(packed), 16).AsSingle();
                lower.StoreUnsafe(ref dst, (nuint)i);
                upper.StoreUnsafe(ref dst, (nuint)(i + 8));
            }
        }

        for (; i < source.Length; i++)
        {
            destination[i] = BFloat16ToSingle(source[i]);
        }
    }
}
