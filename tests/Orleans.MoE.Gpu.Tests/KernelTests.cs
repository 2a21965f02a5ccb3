using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Gpu.Experts;
using Orleans.MoE.Models.Layers;
using Orleans.MoE.Tensors;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Gpu.Tests;

/// <summary>
/// Each product kernel (thread per output, warp per output, tiled GEMM) against the CPU engine's MatMul,
/// f32 and bf16 weights, with bias and accumulation; on ILGPU's CPU accelerator with 4-wide warps and,
/// for the warp kernel, 32-wide warps as CUDA has.
/// </summary>
public sealed class KernelTests
{
    public static TheoryData<LinearKernel, bool> Kernels => new()
    {
        { LinearKernel.Thread, false }, { LinearKernel.Thread, true },
        { LinearKernel.Warp, false }, { LinearKernel.Warp, true },
        { LinearKernel.Tiled, false }, { LinearKernel.Tiled, true },
    };

    [Theory]
    [MemberData(nameof(Kernels))]
    public void Linear_kernels_match_the_cpu_product(LinearKernel kernel, bool bf16)
    {
        using var device = GpuDevice.CreateIlgpuCpu(new GpuOptions { Linear = kernel });
        AssertLinearMatches(device, rows: 3, n: 10, k: bf16 ? 24 : 13, bf16);
    }

    [Fact]
    public void Warp_kernel_is_right_with_32_wide_warps()
    {
        using var device = GpuDevice.CreateIlgpuCpu(new GpuOptions { Linear = LinearKernel.Warp }, warpSize: 32, warpsPerGroup: 2);
        AssertLinearMatches(device, rows: 2, n: 5, k: 72, bf16: true);
    }

    /// <summary>Under bf16 activations a GEMM (more rows than the GEMV limit, or the tiled kernel) rounds its operand; a GEMV does not.</summary>
    [Theory]
    [InlineData(LinearKernel.Tiled, 3, true, true)]
    [InlineData(LinearKernel.Tiled, 3, false, false)]
    [InlineData(LinearKernel.Auto, 3, true, false)]
    [InlineData(LinearKernel.Auto, 9, true, true)]
    public void Bf16_activations_round_the_gemms_operand_for_bf16_weights_only(LinearKernel kernel, int rows, bool bf16, bool rounds)
    {
        using var device = GpuDevice.CreateIlgpuCpu(new GpuOptions { Linear = kernel, Precision = GpuPrecision.Bf16Activations });
        var (n, k) = (10, 24);
        var random = new Random(17);
        var weights = Values(random, n * k);
        var matrix = bf16 ? Bf16Matrix(weights, n, k) : WeightMatrix.FromArray(weights, n, k);
        var x = Values(random, rows * k).Select(v => v * 3.3f).ToArray();
        var rounded = x.Select(v => DTypeConvert.BFloat16ToSingle(DTypeConvert.SingleToBFloat16(v))).ToArray();
        var expected = new float[rows * n];
        var exact = new float[rows * n];
        MatMul.Multiply(rounds ? rounded : x, rows, matrix, expected);
        MatMul.Multiply(x, rows, matrix, exact);

        using var w = DeviceMatrix.Upload(device, matrix);
        using var workspace = new Workspace(device);
        var xs = workspace.Floats(x.Length);
        var ys = workspace.Floats(rows * n);
        ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(xs, x);
        device.Ops.Linear(w.View, xs, rows, ys, workspace);

        AssertClose(expected, ys.ToHost());
        Assert.Equal(rounds, expected.Zip(exact).Any(p => Math.Abs(p.First - p.Second) > 1e-4f));
        Assert.Equal(x, xs.ToHost()); // the activations themselves are left alone
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Activations_split_into_bf16_halves_for_cublas(int halves)
    {
        using var device = GpuDevice.CreateIlgpuCpu();
        var x = Values(new Random(3), 50).Select(v => v * 1000f).Append(1f + (1f / 256)).Append(1f + (3f / 256)).ToArray(); // two ties, to even
        using var workspace = new Workspace(device);
        var xs = workspace.Floats(x.Length);
        var split = workspace.UShorts(2L * x.Length);
        ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(xs, x);
        ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(split, Enumerable.Repeat((ushort)0xDEAD, 2 * x.Length).ToArray());
        device.Kernels.SplitBf16(x.Length, xs, split, x.Length, halves);

        var bits = split.ToHost();
        Assert.Equal(x.Select(DTypeConvert.SingleToBFloat16), bits.Take(x.Length));
        Assert.Equal((ushort)0x3F80, bits[x.Length - 2]); // 1 + 2⁻⁸ rounds down to 1
        Assert.Equal((ushort)0x3F82, bits[x.Length - 1]); // 1 + 3·2⁻⁸ rounds up to 1 + 2⁻⁶
        for (var i = 0; i < x.Length; i++)
        {
            var hi = DTypeConvert.BFloat16ToSingle(bits[i]);
            if (halves == 1)
            {
                Assert.Equal((ushort)0xDEAD, bits[x.Length + i]);
            }
            else
            {
                var sum = hi + DTypeConvert.BFloat16ToSingle(bits[x.Length + i]);
                Assert.True(Math.Abs(sum - x[i]) <= Math.Abs(x[i]) * MathF.Pow(2, -16), $"[{i}] {x[i]} split into {sum}");
            }
        }
    }

    [Fact]
    public void Device_expert_uploads_runs_reports_memory_and_frees_it()
    {
        using var device = GpuDevice.CreateIlgpuCpu();
        var random = new Random(3);
        var (hidden, intermediate, tokens) = (16, 12, 3);
        var mlp = new SwiGluMlp(Linear(random, intermediate, hidden), Linear(random, intermediate, hidden), Linear(random, hidden, intermediate));
        var x = Values(random, tokens * hidden);
        var expected = new float[tokens * hidden];
        mlp.Forward(x, tokens, expected);

        var before = device.Memory.WeightBytes;
        var expert = DeviceExpert.Upload(device, mlp);
        Assert.Equal(3L * hidden * intermediate * 4, expert.DeviceBytes);
        Assert.Equal(before + expert.DeviceBytes, device.Memory.WeightBytes);
        var actual = new float[tokens * hidden];
        expert.Forward(x, tokens, actual);
        AssertClose(expected, actual);

        // With scratch shared by the device's experts (as a silo runs them): the same result; not another device's.
        using (var scratch = new ExpertScratch(device))
        {
            var other = DeviceExpert.Upload(device, mlp);
            var shared = new float[tokens * hidden];
            other.Forward(x, tokens, shared, scratch);
            expert.Forward(x, tokens, actual, scratch);
            Assert.Equal(actual, shared);
            AssertClose(expected, shared);
            other.Dispose();
            using var elsewhere = GpuDevice.CreateIlgpuCpu();
            using var foreign = new ExpertScratch(elsewhere);
            Assert.Throws<ArgumentException>(() => expert.Forward(x, tokens, actual, foreign));
        }

        expert.Dispose();
        Assert.Equal(before, device.Memory.WeightBytes);
        Assert.Throws<ObjectDisposedException>(() => expert.Forward(x, tokens, actual));
    }

    [Fact]
    public void Device_experts_run_as_one_batch_and_leave_the_rows_between_them_alone()
    {
        using var device = GpuDevice.CreateIlgpuCpu();
        var random = new Random(4);
        var (hidden, intermediate) = (8, 6);
        SwiGluMlp Mlp() => new(Linear(random, intermediate, hidden), Linear(random, intermediate, hidden), Linear(random, hidden, intermediate));
        var (first, second) = (Mlp(), Mlp());
        var x = Values(random, 7 * hidden);

        // Rows 0-1: the second expert; 2: another engine's (kept); 3-5: the first expert; 6: kept.
        var output = Enumerable.Repeat(42f, x.Length).ToArray();
        using var a = DeviceExpert.Upload(device, first);
        using var b = DeviceExpert.Upload(device, second);
        using var scratch = new ExpertScratch(device);
        DeviceExpert.Forward([new ExpertRowsOnDevice(b, 0, 2), new ExpertRowsOnDevice(a, 3, 3)], x, output, scratch);

        var expected = Enumerable.Repeat(42f, x.Length).ToArray();
        second.Forward(x.AsSpan(0, 2 * hidden), 2, expected.AsSpan(0, 2 * hidden));
        first.Forward(x.AsSpan(3 * hidden, 3 * hidden), 3, expected.AsSpan(3 * hidden, 3 * hidden));
        AssertClose(expected, output);

        a.Dispose();
        Assert.Throws<ObjectDisposedException>(() => DeviceExpert.Forward([new ExpertRowsOnDevice(a, 0, 1)], x, output, scratch));
        using var elsewhere = GpuDevice.CreateIlgpuCpu();
        using var foreign = new ExpertScratch(elsewhere);
        Assert.Throws<ArgumentException>(() => DeviceExpert.Forward([new ExpertRowsOnDevice(b, 0, 1)], x, output, foreign));
    }

    [Fact]
    public void Cuda_without_a_driver_falls_back_to_the_cpu_engine_with_one_line()
    {
        using var choice = GpuDevice.Choose(DeviceKind.Auto);
        if (choice.IsGpu)
        {
            Assert.StartsWith("cuda: ", choice.Reason, StringComparison.Ordinal);
            return;
        }

        Assert.Null(choice.Device);
        Assert.StartsWith("cpu: ", choice.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', choice.Reason);
        using var cpu = GpuDevice.Choose(DeviceKind.Cpu);
        Assert.Null(cpu.Device);
        using var simulated = GpuDevice.Choose(DeviceKind.IlgpuCpu);
        Assert.NotNull(simulated.Device);
    }

    [Theory]
    [InlineData("cuda", DeviceKind.Cuda)]
    [InlineData("ilgpu-cpu", DeviceKind.IlgpuCpu)]
    [InlineData("CPU", DeviceKind.Cpu)]
    [InlineData("auto", DeviceKind.Auto)]
    public void Device_names_parse(string name, DeviceKind kind) => Assert.Equal(kind, DeviceKinds.Parse(name));

    [Fact]
    public void Unknown_device_name_is_refused() => Assert.Throws<FormatException>(() => DeviceKinds.Parse("tpu"));

    private static void AssertLinearMatches(GpuDevice device, int rows, int n, int k, bool bf16)
    {
        var random = new Random(n * k);
        var weights = Values(random, n * k);
        var matrix = bf16 ? Bf16Matrix(weights, n, k) : WeightMatrix.FromArray(weights, n, k);
        var x = Values(random, rows * k);
        var bias = Values(random, n);
        var initial = Values(random, rows * n);
        var expected = new float[rows * n];
        MatMul.Multiply(x, rows, matrix, expected);
        for (var i = 0; i < expected.Length; i++)
        {
            expected[i] += bias[i % n] + initial[i];
        }

        using var w = DeviceMatrix.Upload(device, matrix);
        using var workspace = new Workspace(device);
        var xs = workspace.Floats(x.Length);
        var ys = workspace.Floats(initial.Length);
        var bs = workspace.Floats(n);
        ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(xs, x);
        ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(ys, initial);
        ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(bs, bias);
        device.Ops.Linear(w.View, xs, rows, ys, workspace, bs, accumulate: true);
        AssertClose(expected, ys.ToHost());
    }

    internal static WeightMatrix Bf16Matrix(float[] values, int rows, int cols)
    {
        var bits = GC.AllocateArray<ushort>(values.Length, pinned: true);
        for (var i = 0; i < values.Length; i++)
        {
            bits[i] = DTypeConvert.SingleToBFloat16(values[i]);
        }

        unsafe
        {
            return new WeightMatrix((nint)System.Runtime.CompilerServices.Unsafe.AsPointer(ref bits[0]), rows, cols, DType.BF16);
        }
    }

    private static Linear Linear(Random random, int outFeatures, int inFeatures) =>
        new(WeightMatrix.FromArray(Values(random, outFeatures * inFeatures), outFeatures, inFeatures));

    internal static float[] Values(Random random, int count) => Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();

    internal static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5f * Math.Max(1f, Math.Abs(expected[i])), $"[{i}] expected {expected[i]}, got {actual[i]}");
        }
    }
}
