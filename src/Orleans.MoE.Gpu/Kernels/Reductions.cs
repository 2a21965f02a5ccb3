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

    /// <summary>
    /// Exclusive prefix sum over the group in thread order (warp scans by shuffles, then the warps'
    /// totals): the sum of the values of the threads before this one, and the group's total.
    /// </summary>
    public static int GroupScan(int value, out int total)
    {
        var partial = SharedMemory.Allocate<int>(32);
        var inclusive = value;
        for (var d = 1; d < Warp.WarpSize; d <<= 1)
        {
            var other = Warp.ShuffleUp(inclusive, d);
            inclusive += Warp.LaneIdx >= d ? other : 0;
        }

        if (Warp.LaneIdx == Warp.WarpSize - 1)
        {
            partial[Warp.WarpIdx] = inclusive;
        }

        Group.Barrier();
        var before = 0;
        total = 0;
        var warps = Group.DimX / Warp.WarpSize;
        for (var i = 0; i < warps; i++)
        {
            before += i < Warp.WarpIdx ? partial[i] : 0;
            total += partial[i];
        }

        Group.Barrier();
        return before + inclusive - value;
    }
}
