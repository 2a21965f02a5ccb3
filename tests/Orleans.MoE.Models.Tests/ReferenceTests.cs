using Orleans.MoE.Models.Verification;
using Xunit.Abstractions;

namespace Orleans.MoE.Models.Tests;

/// <summary>Every fixture and the demo model reproduce the Hugging Face reference (full sequence, KV-cache decode, greedy).</summary>
public sealed class ReferenceTests(ITestOutputHelper output)
{
    public static TheoryData<string> Fixtures => new()
    {
        "mixtral-tiny", "mixtral-tiny-bf16", "qwen2moe-tiny", "qwen3moe-tiny", "olmoe-tiny", "deepseekv3-tiny",
    };

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Fixture_reproduces_reference(string fixture)
    {
        var directory = Path.Combine(RepositoryPaths.Fixtures, fixture);
        AssertReproduces(directory, fixture, expectedChecks: ["logits[0]", "decode_logits[0]", "logits[1]", "decode_logits[1]", "hidden_states[0]", "greedy"]);
    }

    [Fact]
    public void Demo_model_reproduces_reference()
    {
        AssertReproduces(RepositoryPaths.DemoModel, "moe-tiny-py", expectedChecks: ["prompt0.logits", "prompt0.decode_logits", "prompt0.greedy", "prompt3.greedy"]);
    }

    private void AssertReproduces(string directory, string name, string[] expectedChecks)
    {
        using var model = ModelLoader.Load(directory);
        var checks = ReferenceVerifier.Verify(model, Path.Combine(directory, "reference.safetensors"), name).ToList();
        foreach (var check in checks)
        {
            output.WriteLine($"{check.Check}: max |diff| {check.MaxAbsDiff:g3} (tolerance {check.Tolerance:g3}) {(check.Passed ? "ok" : "FAILED " + check.Detail)}");
        }

        Assert.All(expectedChecks, c => Assert.Contains(checks, k => k.Check == c));
        Assert.All(checks, c => Assert.True(c.Passed, $"{c.Check}: max |diff| {c.MaxAbsDiff} > {c.Tolerance} {c.Detail}"));
    }
}
