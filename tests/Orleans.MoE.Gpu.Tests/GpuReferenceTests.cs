using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Models;
using Orleans.MoE.Models.Verification;
using Xunit.Abstractions;

namespace Orleans.MoE.Gpu.Tests;

/// <summary>
/// Every fixture and the demo model reproduce the Hugging Face reference through the GPU kernels on
/// ILGPU's CPU accelerator (full sequence, KV-cache decode, hidden states, router logits, greedy), with
/// the CPU engine's tolerance.
/// </summary>
public sealed class GpuReferenceTests(ITestOutputHelper output)
{
    public static TheoryData<string> Fixtures => new()
    {
        "mixtral-tiny", "mixtral-tiny-bf16", "qwen2moe-tiny", "qwen3moe-tiny", "olmoe-tiny", "deepseekv3-tiny",
    };

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Fixture_reproduces_reference_on_the_ilgpu_cpu_accelerator(string fixture)
    {
        AssertReproduces(RepositoryPaths.Fixture(fixture), fixture, ["logits[0]", "decode_logits[0]", "logits[1]", "hidden_states[0]", "greedy"]);
    }

    /// <summary>
    /// The experts' three paths, each forced for every token count: pairs, grouped GEMV, per-expert GEMM
    /// (the grouped GEMV's simulated warps take about 25 s a fixture here, so two fixtures: bf16 and f32 weights).
    /// </summary>
    public static TheoryData<string, string> ExpertPaths => new()
    {
        { "mixtral-tiny-bf16", "pairs" }, { "mixtral-tiny-bf16", "grouped-gemv" }, { "mixtral-tiny-bf16", "grouped-gemm" },
        { "deepseekv3-tiny", "pairs" }, { "deepseekv3-tiny", "grouped-gemv" }, { "deepseekv3-tiny", "grouped-gemm" },
    };

    [Theory]
    [MemberData(nameof(ExpertPaths))]
    public void Fixture_reproduces_reference_through_each_expert_path(string fixture, string path)
    {
        var options = path switch
        {
            "pairs" => new GpuOptions { ExpertPairTokenLimit = int.MaxValue },
            "grouped-gemv" => new GpuOptions { ExpertPairTokenLimit = 0, ExpertGemvRowsLimit = int.MaxValue },
            _ => new GpuOptions { ExpertPairTokenLimit = 0, ExpertGemvRowsLimit = 0 },
        };
        AssertReproduces(RepositoryPaths.Fixture(fixture), fixture, ["logits[0]", "decode_logits[0]", "greedy"], options);
    }

    /// <summary>
    /// Bf16 activations hold their stated tolerance on the bf16 fixture, with every product a GEMM (no
    /// GEMV limit, the experts through their GEMMs), so every product of the model rounds. (The demo model
    /// holds it too, at about a fifth of it, but its 60-token greedy prompt3 leaves the reference at a
    /// near-tie; it takes 75 s here, so it is measured in docs/GPU-BACKEND.md rather than in the suite.)
    /// </summary>
    [Fact]
    public void Bf16_activations_hold_their_stated_tolerance()
    {
        var options = new GpuOptions { Precision = GpuPrecision.Bf16Activations, GemvTokenLimit = 0, ExpertPairTokenLimit = 0, ExpertGemvRowsLimit = 0 };
        var checks = AssertReproduces(RepositoryPaths.Fixture("mixtral-tiny-bf16"), "mixtral-tiny-bf16", ["logits[0]", "hidden_states[0]", "greedy"], options, GpuOptions.Bf16ActivationsTolerance);

        // The activations really were rounded: the exact tolerance does not hold.
        var logits = checks.Single(c => c.Check == "logits[0]");
        Assert.True(logits.MaxAbsDiff > logits.Tolerance * ReferenceVerifier.RelativeTolerance / GpuOptions.Bf16ActivationsTolerance);
    }

    [Fact]
    public void Demo_model_reproduces_reference_on_the_ilgpu_cpu_accelerator()
    {
        AssertReproduces(RepositoryPaths.DemoModel, "moe-tiny-py", ["prompt0.logits", "prompt0.decode_logits", "prompt0.greedy", "prompt3.greedy"]);
    }

    private List<VerificationCheck> AssertReproduces(string directory, string name, string[] expectedChecks, GpuOptions? options = null,
        double relativeTolerance = ReferenceVerifier.RelativeTolerance)
    {
        using var device = GpuDevice.CreateIlgpuCpu(options);
        using var cpu = ModelLoader.Load(directory);
        using var model = GpuModel.Upload(device, cpu);
        var checks = ReferenceVerifier.Verify(model, Path.Combine(directory, "reference.safetensors"), name, relativeTolerance).ToList();
        foreach (var check in checks)
        {
            output.WriteLine($"{check.Check}: max |diff| {check.MaxAbsDiff:g3} (tolerance {check.Tolerance:g3}) {(check.Passed ? "ok" : "FAILED " + check.Detail)}");
        }

        Assert.All(expectedChecks, c => Assert.Contains(checks, k => k.Check == c));
        Assert.All(checks, c => Assert.True(c.Passed, $"{c.Check}: max |diff| {c.MaxAbsDiff} > {c.Tolerance} {c.Detail}"));
        return checks;
    }
}
