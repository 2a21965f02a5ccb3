using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Models;
using Orleans.MoE.Models.Verification;
using Xunit.Abstractions;

namespace Orleans.MoE.Gpu.Tests;

/// <summary>The reference checks on CUDA when this machine has a GPU; elsewhere the test says why it did nothing and passes.</summary>
public sealed class CudaTests(ITestOutputHelper output)
{
    [Fact]
    public void Fixtures_reproduce_reference_on_cuda_when_a_gpu_is_present()
    {
        using var choice = GpuDevice.Choose(DeviceKind.Cuda);
        if (choice.Device is not { } gpu)
        {
            output.WriteLine($"skipped: {choice.Reason}");
            return;
        }

        foreach (var fixture in new[] { "mixtral-tiny", "mixtral-tiny-bf16", "qwen2moe-tiny", "qwen3moe-tiny", "olmoe-tiny", "deepseekv3-tiny" })
        {
            var directory = RepositoryPaths.Fixture(fixture);
            using var cpu = ModelLoader.Load(directory);
            using var model = GpuModel.Upload(gpu, cpu);
            var checks = ReferenceVerifier.Verify(model, Path.Combine(directory, "reference.safetensors"), fixture).ToList();
            Assert.All(checks, c => Assert.True(c.Passed, $"{fixture} {c.Check}: max |diff| {c.MaxAbsDiff} > {c.Tolerance} {c.Detail}"));
        }
    }
}
