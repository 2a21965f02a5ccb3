using ILGPU;

namespace Orleans.MoE.Gpu.Kernels;

/// <summary>Warp and group reductions for explicitly grouped kernels; every thread of the group gets the result.</summary>
internal static class Reductions
{
    public static float WarpSum(float value)
    {
        for (var mask = Warp.WarpSize / 2; mask > 0; mask >>= 1)
        {
            value += Warp.ShuffleXor(value, mask);
        }

        return value;
    }

    public static float WarpMax(float value)
    {
        for (var mask = Warp.WarpSize / 2; mask > 0; mask >>= 1)
        {
            var other = Warp.ShuffleXor(value, mask);
            value = other > value ? other : value;
        }

        return value;
    }

    /// <summary>Sum over the group: warp sums, then every thread adds the warps' partial sums in order.</summary>
    public static float GroupSum(float value)
    {
        var partial = SharedMemory.Allocate<float>(32);
        value = WarpSum(value);
        if (Warp.LaneIdx == 0)
        {
            partial[Warp.WarpIdx] = value;
        }

        Group.Barrier();
        var total = 0f;
        var warps = Group.DimX / Warp.WarpSize;
        for (var i = 0; i < warps; i++)
        {
            total += partial[i];
        }

        Group.Barrier();
        return total;
    }

    public static float GroupMax(float value)
    {
        var partial = SharedMemory.Allocate<float>(32);
        value = WarpMax(value);
        if (Warp.LaneIdx == 0)
        {
            partial[Warp.WarpIdx] = value;
        }

        Group.Barrier();
        var result = partial[0];
        var warps = Group.DimX / Warp.WarpSize;
        for (var i = 1; i < warps; i++)
        {
            result = partial[i] > result ? partial[i] : result;
        }

        Group.Barrier();
        return result;
    }
}
