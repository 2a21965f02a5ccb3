using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using Orleans.MoE.Gpu.Kernels;
using CuBlas = Orleans.MoE.Gpu.Blas.CuBlas;

namespace Orleans.MoE.Gpu.Device;

/// <summary>
/// One accelerator and everything that lives on it: the ILGPU context and accelerator, the compiled
/// kernels, cuBLAS's handle on the accelerator's stream, and the count of device memory held by the
/// buffers allocated through it. The root of the ownership tree: models, experts and sequences
/// allocate through a device and must be disposed before it.
/// </summary>
public sealed class GpuDevice : IDisposable
{
    private readonly Context _context;
    private readonly CuBlas? _blas;
    private long _allocated;
    private long _weights;

    private GpuDevice(Context context, Accelerator accelerator, DeviceKind kind, GpuOptions options, CuBlas? blas, string blasReason)
    {
        _context = context;
        Accelerator = accelerator;
        Kind = kind;
        Options = options;
        _blas = blas;
        BlasDescription = blasReason;
        Kernels = new KernelSet(accelerator);
        Ops = new DeviceOps(this);
        GroupSize = Math.Max(accelerator.WarpSize, Math.Min(256, accelerator.MaxNumThreadsPerGroup) / accelerator.WarpSize * accelerator.WarpSize);
    }

    /// <summary><see cref="DeviceKind.Cuda"/> or <see cref="DeviceKind.IlgpuCpu"/>.</summary>
    public DeviceKind Kind { get; }

    public GpuOptions Options { get; }

    /// <summary>The device's name and, on CUDA, its architecture and memory, e.g. "NVIDIA H200 (SM_90, 139.8 GiB)".</summary>
    public string Description => Accelerator is CudaAccelerator cuda
        ? $"{cuda.Name} ({cuda.Architecture}, {cuda.MemorySize / (double)(1L << 30):0.0} GiB)"
        : $"ILGPU CPU accelerator ({Accelerator.WarpSize}-wide warps, groups of {Accelerator.MaxNumThreadsPerGroup})";

    /// <summary>Whether GEMMs go to cuBLAS, and from which library, or why not.</summary>
    public string BlasDescription { get; }

    public bool HasCuBlas => _blas is not null;

    public DeviceMemory Memory => new(Accelerator.MemorySize, Interlocked.Read(ref _allocated), Interlocked.Read(ref _weights));

    internal Accelerator Accelerator { get; }

    internal KernelSet Kernels { get; }

    internal DeviceOps Ops { get; }

    internal CuBlas? Blas => _blas;

    /// <summary>Threads per group of the row-wise kernels: 256, or the accelerator's most, in whole warps.</summary>
    internal int GroupSize { get; }

    internal bool IsCuda => Accelerator is CudaAccelerator;

    /// <summary>
    /// The device for <paramref name="kind"/>. <see cref="DeviceKind.Cuda"/> and <see cref="DeviceKind.Auto"/>
    /// without a CUDA driver or device choose the CPU engine, with a one-line reason (never a stack trace).
    /// </summary>
    public static DeviceChoice Choose(DeviceKind kind, GpuOptions? options = null)
    {
        options ??= GpuOptions.Default;
        options.Validate();
        switch (kind)
        {
            case DeviceKind.Cpu:
                return new DeviceChoice(kind, null, "cpu: the CPU engine, as asked");
            case DeviceKind.IlgpuCpu:
                var simulated = CreateIlgpuCpu(options);
                return new DeviceChoice(kind, simulated, $"ilgpu-cpu: {simulated.Description}{PrecisionNote(options)}");
            default:
                var cuda = TryCreateCuda(options, out var reason);
                return cuda is not null
                    ? new DeviceChoice(kind, cuda, $"cuda: {cuda.Description}, {cuda.BlasDescription}{PrecisionNote(options)}")
                    : new DeviceChoice(kind, null, $"cpu: {reason}; running on the CPU engine");
        }
    }

    /// <summary>The device line's mention of a precision other than exact.</summary>
    private static string PrecisionNote(GpuOptions options) =>
        options.Precision == GpuPrecision.Exact ? "" : $", {options.Precision.Name()} (GEMMs round their activations to bf16)";

    /// <summary>
    /// ILGPU's CPU accelerator, simulating 4-wide warps in groups of up to 16 threads (or the given shape):
    /// small groups keep each simulated launch cheap. Kernels read warp and group sizes from the accelerator.
    /// </summary>
    public static GpuDevice CreateIlgpuCpu(GpuOptions? options = null, int warpSize = 4, int warpsPerGroup = 4)
    {
        var context = Context.Create(b => b.CPU(new CPUDevice(warpSize, warpsPerGroup, 1)).EnableAlgorithms());
        try
        {
            return new GpuDevice(context, context.CreateCPUAccelerator(0), DeviceKind.IlgpuCpu, options ?? GpuOptions.Default, null, "no cuBLAS on the CPU accelerator (tiled GEMM)");
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>CUDA device <see cref="GpuOptions.CudaDevice"/>, or null with a one-line reason.</summary>
    public static GpuDevice? TryCreateCuda(GpuOptions? options, out string reason)
    {
        options ??= GpuOptions.Default;
        Context? context = null;
        try
        {
            context = Context.Create(b => b.Cuda().EnableAlgorithms());
            var devices = context.GetCudaDevices();
            if (devices.Count <= options.CudaDevice)
            {
                reason = devices.Count == 0
                    ? "no CUDA device (no NVIDIA driver libcuda.so.1 found, or no GPU visible)"
                    : $"CUDA device {options.CudaDevice} asked for, {devices.Count} present";
                context.Dispose();
                return null;
            }

            var accelerator = context.CreateCudaAccelerator(options.CudaDevice);
            CuBlas? blas = null;
            var blasReason = "cuBLAS off (tiled GEMM)";
            if (options.UseCuBlas)
            {
                accelerator.Bind();
                blas = CuBlas.TryLoad(out blasReason);
                blas?.SetStream(((CudaStream)accelerator.DefaultStream).StreamPtr);
                if (blas is null)
                {
                    blasReason += " (tiled GEMM)";
                }
            }

            reason = "";
            return new GpuDevice(context, accelerator, DeviceKind.Cuda, options, blas, blasReason);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            context?.Dispose();
            reason = $"CUDA unavailable: {FirstLine(e)}";
            return null;
        }
    }

    /// <summary>Device memory for <paramref name="length"/> elements, counted (as weights or not) until disposed.</summary>
    public DeviceBuffer<T> Allocate<T>(long length, bool isWeights = false)
        where T : unmanaged => new(this, length, isWeights);

    /// <summary>Waits for every launched kernel and copy.</summary>
    public void Synchronize() => Accelerator.Synchronize();

    /// <summary>Makes the device current on the calling thread (CUDA contexts are per thread).</summary>
    public void Bind() => Accelerator.Bind();

    internal void Track(long bytes, bool isWeights)
    {
        Interlocked.Add(ref _allocated, bytes);
        if (isWeights)
        {
            Interlocked.Add(ref _weights, bytes);
        }
    }

    public void Dispose()
    {
        _blas?.Dispose();
        Accelerator.Dispose();
        _context.Dispose();
    }

    private static string FirstLine(Exception e)
    {
        var inner = e;
        while (inner.InnerException is not null && inner is TypeInitializationException)
        {
            inner = inner.InnerException;
        }

        var message = inner.Message.Split('\n')[0].Trim();
        return $"{inner.GetType().Name}: {message}";
    }
}
