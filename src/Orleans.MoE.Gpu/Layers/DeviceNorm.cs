using ILGPU;
using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Models.Layers;

namespace Orleans.MoE.Gpu.Layers;

/// <summary>An RMSNorm's weight on the device.</summary>
internal sealed class DeviceNorm : IDisposable
{
    private readonly DeviceBuffer<float> _weight;

    public DeviceNorm(GpuDevice device, RmsNorm norm)
    {
        _weight = device.Allocate<float>(norm.Width, isWeights: true);
        ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(_weight.View, device.Accelerator.DefaultStream, norm.Weight.Span);
        Eps = norm.Eps;
    }

    public ArrayView<float> Weight => _weight.View;

    public int Width => _weight.View.IntLength;

    public float Eps { get; }

    /// <summary>y = norm(x) for <paramref name="rows"/> rows of <see cref="Width"/> (strides default to the width).</summary>
    public void Forward(DeviceOps ops, ArrayView<float> x, ArrayView<float> y, int rows, int xStride = 0, int yStride = 0) =>
        ops.RmsNorm(x, xStride == 0 ? Width : xStride, y, yStride == 0 ? Width : yStride, rows, Weight, Eps);

    public void Dispose() => _weight.Dispose();
}

/// <summary>A linear layer's weight [out, in] (as stored) and optional bias on the device.</summary>
internal sealed class DeviceLinear : IDisposable
{
    private readonly DeviceMatrix _weight;
    private readonly DeviceBuffer<float>? _bias;

    public DeviceLinear(GpuDevice device, Linear linear)
    {
        _weight = DeviceMatrix.Upload(device, linear.Weight);
        if (linear.Bias is { } bias)
        {
            _bias = device.Allocate<float>(bias.Length, isWeights: true);
            ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(_bias.View, bias);
        }
    }

    public MatrixView Weight => _weight.View;

    public int InFeatures => _weight.Cols;

    public int OutFeatures => _weight.Rows;

    /// <summary>y[rows, out] = x · Wᵀ + b (+ y when accumulating).</summary>
    public void Forward(DeviceOps ops, ArrayView<float> x, int rows, ArrayView<float> y, Workspace workspace, bool accumulate = false) =>
        ops.Linear(Weight, x, rows, y, workspace, _bias?.View ?? default, accumulate);

    public void Dispose()
    {
        _weight.Dispose();
        _bias?.Dispose();
    }
}

/// <summary>
/// A SwiGLU MLP on the device with gate and up stacked into one [2I, H] matrix (one product gives
/// both): output = down(silu(gate x) · up x). Dense layers, shared experts and single experts.
/// </summary>
internal sealed class DeviceMlp : IDisposable
{
    private readonly DeviceMatrix _gateUp;
    private readonly DeviceMatrix _down;

    public DeviceMlp(GpuDevice device, SwiGluMlp mlp)
    {
        if (mlp.Gate.Bias is not null || mlp.Up.Bias is not null || mlp.Down.Bias is not null)
        {
            throw new NotSupportedException("SwiGLU projections with biases are not supported on the GPU backend");
        }

        _gateUp = DeviceMatrix.Stack(device, [mlp.Gate.Weight, mlp.Up.Weight]);
        try
        {
            _down = DeviceMatrix.Upload(device, mlp.Down.Weight);
        }
        catch
        {
            _gateUp.Dispose();
            throw;
        }
    }

    public int Intermediate => _down.Cols;

    public int Hidden => _down.Rows;

    public long Bytes => _gateUp.Bytes + _down.Bytes;

    /// <summary>y[T, H] (+)= MLP(x[T, H]).</summary>
    public void Forward(DeviceOps ops, ArrayView<float> x, int tokens, ArrayView<float> y, Workspace workspace, bool accumulate)
    {
        var gateUp = workspace.Floats((long)tokens * 2 * Intermediate);
        ops.Linear(_gateUp.View, x, tokens, gateUp, workspace);
        var act = workspace.Floats((long)tokens * Intermediate);
        ops.SwiGlu(gateUp, act, tokens, Intermediate);
        ops.Linear(_down.View, act, tokens, y, workspace, accumulate: accumulate);
    }

    public void Dispose()
    {
        _gateUp.Dispose();
        _down.Dispose();
    }
}
