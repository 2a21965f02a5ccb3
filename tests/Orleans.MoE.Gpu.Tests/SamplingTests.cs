using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Models;

namespace Orleans.MoE.Gpu.Tests;

/// <summary>Choosing the next token on the device: greedy equals the argmax of the logits; temperature draws follow the uniform given.</summary>
public sealed class SamplingTests
{
    [Fact]
    public void Greedy_and_temperature_sampling_on_the_device()
    {
        using var device = GpuDevice.CreateIlgpuCpu();
        using var cpu = ModelLoader.Load(RepositoryPaths.Fixture("mixtral-tiny"));
        using var model = GpuModel.Upload(device, cpu);
        int[] prompt = [1, 17, 42, 99];

        using var a = model.CreateSequence();
        var logits = model.Forward(prompt, a);
        var argmax = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits);

        using var b = model.CreateSequence();
        Assert.Equal(argmax, model.NextToken(prompt, b));
        Assert.Equal(prompt.Length, b.Length);

        // A very low temperature is greedy whatever the draw; a draw at u lands where the CDF (in id order) passes u.
        using var c = model.CreateSequence();
        Assert.Equal(argmax, model.NextToken(prompt, c, temperature: 1e-3f, uniform: 0.5f));
        var u = 0.3f;
        var probabilities = logits.Select(l => Math.Exp(l - logits.Max())).ToArray();
        var total = probabilities.Sum();
        var running = 0.0;
        var expected = Array.FindIndex(probabilities, p => (running += p) > u * total);
        using var d = model.CreateSequence();
        Assert.Equal(expected, model.NextToken(prompt, d, temperature: 1f, uniform: u));
    }
}
