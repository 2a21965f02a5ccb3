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
        string[] checks = ["logits[0]", "decode_logits[0]", "logits[1]", "decode_logits[1]", "hidden_states[0]", "greedy"];
        // Every reference but DeepSeek-V3's (whose transformers model does not return them) holds router logits.
        AssertReproduces(directory, fixture, expectedChecks: fixture == "deepseekv3-tiny" ? checks : [.. checks, "router_logits[0]"]);
    }

    [Fact]
    public void Demo_model_reproduces_reference()
    {
        AssertReproduces(RepositoryPaths.DemoModel, "moe-tiny-py", expectedChecks: ["prompt0.logits", "prompt0.decode_logits", "prompt0.greedy", "prompt3.greedy"]);
    }

    [Fact]
    public void A_forward_pass_that_records_no_router_logits_fails_the_router_check()
    {
        var directory = Path.Combine(RepositoryPaths.Fixtures, "mixtral-tiny");
        using var model = ModelLoader.Load(directory);

        var checks = ReferenceVerifier.Verify(new WithoutRouterTrace(model), Path.Combine(directory, "reference.safetensors"), "mixtral-tiny").ToList();

        Assert.All(checks.Where(c => c.Check.StartsWith("logits", StringComparison.Ordinal) || c.Check.StartsWith("hidden_states", StringComparison.Ordinal)), c => Assert.True(c.Passed, c.Check));
        var router = Assert.Single(checks, c => c.Check == "router_logits[0]");
        Assert.False(router.Passed);
        Assert.Contains("recorded 0 layers", router.Detail, StringComparison.Ordinal);
    }

    /// <summary>The CPU engine, with a trace that keeps the hidden states and loses the router logits.</summary>
    private sealed class WithoutRouterTrace(CausalLanguageModel model) : IReferenceModel
    {
        public int VocabSize => model.VocabSize;

        public int HiddenSize => model.HiddenSize;

        public IDisposable CreateSequence(int capacity) => new Sequence(model.CreateCache(capacity));

        public float[] Forward(int[] tokens, IDisposable sequence, bool allLogits = false, ForwardTrace? trace = null)
        {
            var full = new ForwardTrace();
            var logits = model.Forward(tokens, ((Sequence)sequence).Cache, allLogits, full);
            trace?.HiddenStates.AddRange(full.HiddenStates);
            return logits;
        }

        private sealed record Sequence(KvCache Cache) : IDisposable
        {
            public void Dispose()
            {
            }
        }
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
