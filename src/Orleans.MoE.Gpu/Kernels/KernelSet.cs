using ILGPU;
using ILGPU.Runtime;

namespace Orleans.MoE.Gpu.Kernels;

/// <summary>The kernels that read weights, compiled for one weight storage (f32 or bf16) on one accelerator, each on first use.</summary>
internal sealed class WeightKernels<TW>(Accelerator accelerator)
    where TW : struct, IWeights
{
    private Action<Index1D, DotArgs, TW>? _dotThread;
    private Action<KernelConfig, DotArgs, TW>? _dotWarp;
    private Action<KernelConfig, DotArgs, TW, int, int>? _tiled;
    private Action<KernelConfig, ExpertRowsArgs, TW>? _expertRows;
    private Action<Index1D, ArrayView<int>, TW, ArrayView<float>, int>? _embedding;
    private Action<Index1D, ArrayView<float>, TW, ArrayView<float>, int, int, int, int, int>? _mlaQuery;
    private Action<Index1D, ArrayView<float>, TW, ArrayView<float>, int, int, int, int>? _mlaValue;

    public Action<Index1D, DotArgs, TW> DotThread => _dotThread ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, DotArgs, TW>(LinearKernels.DotThread);

    public Action<KernelConfig, DotArgs, TW> DotWarp => _dotWarp ??= accelerator.LoadStreamKernel<DotArgs, TW>(LinearKernels.DotWarp);

    public Action<KernelConfig, DotArgs, TW, int, int> Tiled => _tiled ??= accelerator.LoadStreamKernel<DotArgs, TW, int, int>(LinearKernels.Tiled);

    public Action<KernelConfig, ExpertRowsArgs, TW> ExpertRows => _expertRows ??= accelerator.LoadStreamKernel<ExpertRowsArgs, TW>(MoeKernels.ExpertRows);

    public Action<Index1D, ArrayView<int>, TW, ArrayView<float>, int> Embedding =>
        _embedding ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, TW, ArrayView<float>, int>(ElementKernels.Embedding);

    public Action<Index1D, ArrayView<float>, TW, ArrayView<float>, int, int, int, int, int> MlaQuery =>
        _mlaQuery ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, TW, ArrayView<float>, int, int, int, int, int>(AttentionKernels.MlaQuery);

    public Action<Index1D, ArrayView<float>, TW, ArrayView<float>, int, int, int, int> MlaValue =>
        _mlaValue ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, TW, ArrayView<float>, int, int, int, int>(AttentionKernels.MlaValue);
}

/// <summary>Every kernel of the backend for one accelerator, compiled on first use and kept with the device.</summary>
internal sealed class KernelSet(Accelerator accelerator)
{
    private Action<KernelConfig, NormArgs>? _rmsNorm;
    private Action<Index1D, RopeArgs>? _rope;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int>? _swiGlu;
    private Action<Index1D, ArrayView<float>, ArrayView<float>>? _add;
    private Action<Index1D, ArrayView<float>, float>? _clamp;
    private Action<Index1D, ArrayView<float>, int, ArrayView<float>, int, int>? _copyRows;
    private Action<KernelConfig, AttentionArgs>? _attention;
    private Action<KernelConfig, RouteArgs>? _route;
    private Action<KernelConfig, ArrayView<int>, ArrayView<int>>? _countExperts;
    private Action<KernelConfig, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>>? _permute;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int>? _gather;
    private Action<Index1D, CombineArgs>? _combine;
    private Action<Index1D, ArrayView<float>, ArrayView<ushort>, int, int>? _splitBf16;
    private Action<Index1D, ArrayView<float>, ArrayView<float>>? _roundToBf16;
    private Action<Index1D, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, int>? _splitBf16ByExpert;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, int>? _finishByExpert;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>? _finish;
    private Action<KernelConfig, ArrayView<float>, ArrayView<int>, int>? _argmax;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, float>? _sample;

    public WeightKernels<F32Weights> F32 { get; } = new(accelerator);

    public WeightKernels<Bf16Weights> Bf16 { get; } = new(accelerator);

    public Action<KernelConfig, NormArgs> RmsNorm => _rmsNorm ??= accelerator.LoadStreamKernel<NormArgs>(ElementKernels.RmsNorm);

    public Action<Index1D, RopeArgs> Rope => _rope ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, RopeArgs>(ElementKernels.Rope);

    public Action<Index1D, ArrayView<float>, ArrayView<float>, int> SwiGlu =>
        _swiGlu ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(ElementKernels.SwiGlu);

    public Action<Index1D, ArrayView<float>, ArrayView<float>> Add =>
        _add ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(ElementKernels.Add);

    public Action<Index1D, ArrayView<float>, float> Clamp =>
        _clamp ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float>(ElementKernels.Clamp);

    public Action<Index1D, ArrayView<float>, int, ArrayView<float>, int, int> CopyRows =>
        _copyRows ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, ArrayView<float>, int, int>(ElementKernels.CopyRows);

    public Action<KernelConfig, AttentionArgs> Attention => _attention ??= accelerator.LoadStreamKernel<AttentionArgs>(AttentionKernels.Attention);

    public Action<KernelConfig, RouteArgs> Route => _route ??= accelerator.LoadStreamKernel<RouteArgs>(MoeKernels.Route);

    public Action<KernelConfig, ArrayView<int>, ArrayView<int>> CountExperts =>
        _countExperts ??= accelerator.LoadStreamKernel<ArrayView<int>, ArrayView<int>>(MoeKernels.CountExperts);

    public Action<KernelConfig, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>> Permute =>
        _permute ??= accelerator.LoadStreamKernel<ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>>(MoeKernels.Permute);

    public Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int> Gather =>
        _gather ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int>(MoeKernels.Gather);

    public Action<Index1D, CombineArgs> Combine => _combine ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, CombineArgs>(MoeKernels.Combine);

    public Action<Index1D, ArrayView<float>, ArrayView<ushort>, int, int> SplitBf16 =>
        _splitBf16 ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<ushort>, int, int>(LinearKernels.SplitBf16);

    public Action<Index1D, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, int> SplitBf16ByExpert =>
        _splitBf16ByExpert ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<ushort>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, int>(LinearKernels.SplitBf16ByExpert);

    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, int> FinishByExpert =>
        _finishByExpert ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<int>, int>(LinearKernels.FinishByExpert);

    public Action<Index1D, ArrayView<float>, ArrayView<float>> RoundToBf16 =>
        _roundToBf16 ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(LinearKernels.RoundToBf16);

    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int> Finish =>
        _finish ??= accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(LinearKernels.Finish);

    public Action<KernelConfig, ArrayView<float>, ArrayView<int>, int> Argmax =>
        _argmax ??= accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<int>, int>(SamplingKernels.Argmax);

    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, float> Sample =>
        _sample ??= accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, int, float>(SamplingKernels.Sample);
}
