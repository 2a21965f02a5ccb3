using System.Runtime.InteropServices;

namespace Orleans.MoE.Gpu.Blas;

/// <summary>
/// cuBLAS's GEMM through P/Invoke on ILGPU's device memory and stream: the tensor-core products ILGPU
/// cannot write. Loads <c>libcublas.so.13</c>, then <c>.so.12</c>, then the unversioned name (or the
/// file named by ORLEANS_MOE_CUBLAS). Every call is checked by one <see cref="Check"/>.
/// </summary>
internal sealed unsafe class CuBlas : IDisposable
{
    public const int Float32 = 0;   // CUDA_R_32F
    public const int BFloat16 = 14; // CUDA_R_16BF
    private const int ComputeFloat32 = 68; // CUBLAS_COMPUTE_32F
    private const int GemmDefault = -1;    // CUBLAS_GEMM_DEFAULT

    private static readonly string[] s_candidates = ["libcublas.so.13", "libcublas.so.12", "libcublas.so", "cublas64_13.dll", "cublas64_12.dll"];

    private readonly nint _library;
    private readonly nint _handle;
    private readonly delegate* unmanaged<nint, int> _destroy;
    private readonly delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, int, nint, int, int, float*, nint, int, int, int, int, int> _gemmEx;

    private CuBlas(nint library, string path)
    {
        _library = library;
        Path = path;
        var create = (delegate* unmanaged<nint*, int>)NativeLibrary.GetExport(library, "cublasCreate_v2");
        _destroy = (delegate* unmanaged<nint, int>)NativeLibrary.GetExport(library, "cublasDestroy_v2");
        _gemmEx = (delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, int, nint, int, int, float*, nint, int, int, int, int, int>)NativeLibrary.GetExport(library, "cublasGemmEx");
        SetStreamFunction = (delegate* unmanaged<nint, nint, int>)NativeLibrary.GetExport(library, "cublasSetStream_v2");
        nint handle;
        Check(create(&handle), "cublasCreate");
        _handle = handle;
    }

    /// <summary>The library file that was loaded.</summary>
    public string Path { get; }

    private delegate* unmanaged<nint, nint, int> SetStreamFunction { get; }

    /// <summary>cuBLAS on the current CUDA context, or null with the reason (library absent, no symbol, create failed).</summary>
    public static CuBlas? TryLoad(out string reason)
    {
        var overridden = Environment.GetEnvironmentVariable("ORLEANS_MOE_CUBLAS");
        var names = string.IsNullOrEmpty(overridden) ? s_candidates : [overridden];
        foreach (var name in names)
        {
            if (!NativeLibrary.TryLoad(name, out var library))
            {
                continue;
            }

            try
            {
                var blas = new CuBlas(library, name);
                reason = $"cuBLAS from {name}";
                return blas;
            }
            catch (Exception e) when (e is EntryPointNotFoundException or InvalidOperationException)
            {
                NativeLibrary.Free(library);
                reason = $"{name}: {e.Message}";
                return null;
            }
        }

        reason = $"no cuBLAS library ({string.Join(", ", names)})";
        return null;
    }

    public void SetStream(nint stream) => Check(SetStreamFunction(_handle, stream), "cublasSetStream");

    /// <summary>
    /// Row-major y[R, N] = x[R, K] · W[N, K]ᵀ, all device pointers: in cuBLAS's column-major terms
    /// yᶜ[N, R] = Wᶜᵀ · xᶜ with W and x read as [K, ·] column-major. f32 accumulate and output.
    /// </summary>
    public void Gemm(nint weights, int weightType, nint x, int xType, nint y, int rows, int n, int k, float beta = 0f)
    {
        var alpha = 1f;
        Check(_gemmEx(_handle, 1, 0, n, rows, k, &alpha, weights, weightType, k, x, xType, k, &beta, y, Float32, n, ComputeFloat32, GemmDefault), "cublasGemmEx");
    }

    public void Dispose()
    {
        _ = _destroy(_handle);
        NativeLibrary.Free(_library);
    }

    private static void Check(int status, string call)
    {
        if (status != 0)
        {
            throw new InvalidOperationException($"{call} failed with cuBLAS status {status}");
        }
    }
}
