using System.Text.RegularExpressions;
using Orleans.MoE.Models.Checkpoints;
using Orleans.MoE.Models.Layers;

namespace Orleans.MoE.Models.Verification;

/// <summary>
/// Reproduces a reference file computed by the Hugging Face implementation. Two formats:
/// the fixtures' (<c>input_ids</c> [B, T], <c>logits</c> [B, T, V], <c>hidden_states</c>,
/// <c>router_logits</c>, <c>greedy_prompt</c>, <c>greedy_output</c>) and the demo model's prompts
/// (<c>promptK_ids</c>, <c>promptK_logits</c>, <c>promptK_greedy</c>). Logits are checked through the
/// full-sequence path and the token-by-token KV-cache path; greedy ids through the KV cache.
/// Tolerance: max |ours − reference| ≤ 1e-4 · max(1, max |reference|) (a backend may state a looser relative one).
/// </summary>
public static partial class ReferenceVerifier
{
    public const double RelativeTolerance = 1e-4;

    /// <summary>
    /// Runs the checks. With <paramref name="moe"/>, every forward pass runs its MoE blocks through it (for
    /// example on expert grains across silos); the hidden states are then those of the distributed forward
    /// and the router logits are computed beside it from the same router.
    /// </summary>
    public static IEnumerable<VerificationCheck> Verify(CausalLanguageModel model, string referencePath, string modelName, IMoeExecutor? moe = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var reference = Checkpoint.Open(referencePath);
        var runner = new Runner(model, moe);
        return reference.Contains("input_ids")
            ? VerifyFixture(runner, reference, modelName, RelativeTolerance).ToList()
            : VerifyPrompts(runner, reference, modelName, RelativeTolerance).ToList();
    }

    /// <summary>
    /// Runs the checks on another backend's forward pass (a GPU, say), with <paramref name="relativeTolerance"/>
    /// in place of <see cref="RelativeTolerance"/> where that backend states a looser one.
    /// </summary>
    public static IEnumerable<VerificationCheck> Verify(IReferenceModel model, string referencePath, string modelName, double relativeTolerance = RelativeTolerance)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var reference = Checkpoint.Open(referencePath);
        return reference.Contains("input_ids")
            ? VerifyFixture(model, reference, modelName, relativeTolerance).ToList()
            : VerifyPrompts(model, reference, modelName, relativeTolerance).ToList();
    }

    /// <summary>One forward pass of the CPU engine, in place or through an MoE executor.</summary>
    private sealed class Runner(CausalLanguageModel model, IMoeExecutor? moe) : IReferenceModel
    {
        public int VocabSize => model.VocabSize;

        public int HiddenSize => model.HiddenSize;

        public IDisposable CreateSequence(int capacity) => new CpuSequence(model.CreateCache(capacity));

        public float[] Forward(int[] tokens, IDisposable sequence, bool allLogits = false, ForwardTrace? trace = null)
        {
            var cache = ((CpuSequence)sequence).Cache;
            return moe is null
                ? model.Forward(tokens, cache, allLogits, trace)
                : model.ForwardBatchAsync([new SequenceStep(tokens, cache)], moe, allLogits, trace: trace).GetAwaiter().GetResult()[0];
        }

        private sealed record CpuSequence(KvCache Cache) : IDisposable
        {
            public void Dispose()
            {
            }
        }
    }

    private static IEnumerable<VerificationCheck> VerifyFixture(IReferenceModel runner, Checkpoint reference, string name, double tolerance)
    {
        var ids = reference.Entry("input_ids");
        var (batch, length) = ((int)ids.Shape[0], (int)ids.Shape[1]);
        var model = runner;
        var inputIds = reference.ReadInt64s("input_ids");
        var logits = reference.ReadSingles("logits");
        var vocab = model.VocabSize;
        var hidden = reference.Contains("hidden_states") ? reference.ReadSingles("hidden_states") : null;
        var router = reference.Contains("router_logits") ? reference.ReadSingles("router_logits") : null;
        var routerExperts = router is null ? 0 : (int)reference.Entry("router_logits").Shape[2];
        var hiddenSize = model.HiddenSize;

        for (var b = 0; b < batch; b++)
        {
            var tokens = ToInts(inputIds.AsSpan(b * length, length));
            var expected = logits.AsMemory(b * length * vocab, length * vocab);
            var trace = new ForwardTrace();
            using var sequence = model.CreateSequence(length);
            var full = runner.Forward(tokens, sequence, allLogits: true, trace);
            yield return Compare(name, $"logits[{b}]", full, expected.Span, tolerance);
            yield return Compare(name, $"decode_logits[{b}]", DecodeLogits(runner, tokens), expected.Span, tolerance);

            if (hidden is not null)
            {
                yield return CompareLayers(name, $"hidden_states[{b}]", trace.HiddenStates, hidden, batch, l => ((l * batch) + b) * length * hiddenSize, length * hiddenSize, tolerance);
            }

            if (router is not null)
            {
                yield return CompareLayers(name, $"router_logits[{b}]", trace.RouterLogits, router, batch, l => ((l * batch * length) + (b * length)) * routerExperts, length * routerExperts, tolerance);
            }
        }

        if (reference.Contains("greedy_prompt"))
        {
            yield return CompareGreedy(runner, name, "greedy", reference.ReadInt64s("greedy_prompt"), reference.ReadInt64s("greedy_output"));
        }
    }

    /// <summary>
    /// The worst of one sequence's per-layer comparisons (layer l's <paramref name="count"/> values start at
    /// <paramref name="offset"/>(l) in <paramref name="reference"/>). Every layer the reference holds must have
    /// been recorded: a forward pass that traces nothing fails, it does not pass by default.
    /// </summary>
    private static VerificationCheck CompareLayers(string name, string check, List<float[]> recorded, float[] reference, int batch, Func<int, int> offset, int count, double tolerance)
    {
        var layers = reference.Length / (batch * count);
        if (recorded.Count != layers)
        {
            return new VerificationCheck(name, check, double.PositiveInfinity, 0, false, $"the forward pass recorded {recorded.Count} layers, the reference has {layers}");
        }

        var worst = (Diff: 0.0, Tolerance: 0.0, Passed: true);
        for (var l = 0; l < layers; l++)
        {
            var c = Compare(name, "", recorded[l], reference.AsSpan(offset(l), count), tolerance);
            worst = (Math.Max(worst.Diff, c.MaxAbsDiff), Math.Max(worst.Tolerance, c.Tolerance), worst.Passed && c.Passed);
        }

        return new VerificationCheck(name, check, worst.Diff, worst.Tolerance, worst.Passed);
    }

    private static IEnumerable<VerificationCheck> VerifyPrompts(IReferenceModel runner, Checkpoint reference, string name, double tolerance)
    {
        var model = runner;
        var prompts = reference.TensorNames.Select(n => PromptName().Match(n)).Where(m => m.Success)
            .Select(m => m.Groups[1].Value).Distinct().OrderBy(p => p.Length).ThenBy(p => p, StringComparer.Ordinal).ToArray();
        if (prompts.Length == 0)
        {
            throw new CheckpointException($"{reference.Location}: neither 'input_ids' nor 'promptK_ids' tensors: not a reference file");
        }

        foreach (var prompt in prompts)
        {
            var ids = ToInts(reference.ReadInt64s($"{prompt}_ids"));
            if (reference.Contains($"{prompt}_logits"))
            {
                var expected = reference.ReadSingles($"{prompt}_logits");
                using (var sequence = model.CreateSequence(ids.Length))
                {
                    yield return Compare(name, $"{prompt}.logits", runner.Forward(ids, sequence, allLogits: true), expected, tolerance);
                }

                yield return Compare(name, $"{prompt}.decode_logits", DecodeLogits(runner, ids), expected, tolerance);
            }

            if (reference.Contains($"{prompt}_greedy"))
            {
                yield return CompareGreedy(runner, name, $"{prompt}.greedy", reference.ReadInt64s($"{prompt}_ids"), reference.ReadInt64s($"{prompt}_greedy"));
            }
        }
    }

    /// <summary>Logits of every position, computed one token at a time through the KV cache.</summary>
    private static float[] DecodeLogits(IReferenceModel runner, int[] tokens)
    {
        var model = runner;
        using var cache = model.CreateSequence(tokens.Length);
        var result = new float[tokens.Length * model.VocabSize];
        for (var t = 0; t < tokens.Length; t++)
        {
            runner.Forward(tokens[t..(t + 1)], cache).CopyTo(result.AsSpan(t * model.VocabSize));
        }

        return result;
    }

    /// <summary>Greedy ids through the KV cache: the prompt in one step, then one token per step.</summary>
    private static VerificationCheck CompareGreedy(IReferenceModel runner, string name, string check, long[] prompt, long[] expected)
    {
        var actual = ToInts(prompt).ToList();
        using var cache = runner.CreateSequence(expected.Length);
        var input = actual.ToArray();
        while (actual.Count < expected.Length)
        {
            var next = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(runner.Forward(input, cache));
            actual.Add(next);
            input = [next];
        }

        var mismatches = actual.Zip(expected).Count(p => p.First != p.Second) + Math.Abs(actual.Count - expected.Length);
        var firstMismatch = Enumerable.Range(0, Math.Min(actual.Count, expected.Length)).FirstOrDefault(i => actual[i] != expected[i], -1);
        return new VerificationCheck(name, check, mismatches, 0, mismatches == 0,
            mismatches == 0 ? null : $"{mismatches} ids differ, first at position {firstMismatch}: expected [{string.Join(",", expected)}], got [{string.Join(",", actual)}]");
    }

    private static VerificationCheck Compare(string name, string check, ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double relativeTolerance)
    {
        if (actual.Length != expected.Length)
        {
            return new VerificationCheck(name, check, double.PositiveInfinity, 0, false, $"{actual.Length} values, reference has {expected.Length}");
        }

        double maxDiff = 0, maxReference = 0;
        for (var i = 0; i < actual.Length; i++)
        {
            var diff = Math.Abs((double)actual[i] - expected[i]);
            maxDiff = double.IsNaN(diff) ? double.PositiveInfinity : Math.Max(maxDiff, diff);
            maxReference = Math.Max(maxReference, Math.Abs(expected[i]));
        }

        var tolerance = relativeTolerance * Math.Max(1, maxReference);
        return new VerificationCheck(name, check, maxDiff, tolerance, maxDiff <= tolerance);
    }

    private static int[] ToInts(ReadOnlySpan<long> ids)
    {
        var result = new int[ids.Length];
        for (var i = 0; i < ids.Length; i++)
        {
            result[i] = checked((int)ids[i]);
        }

        return result;
    }

    [GeneratedRegex(@"^(prompt\d+)_(ids|logits|greedy)$")]
    private static partial Regex PromptName();
}

/// <summary>
/// A model the verifier can run: token ids to logits at the positions after what a sequence (its KV
/// cache, disposed by the verifier) holds. The CPU engine is one; another backend implements it to be checked the same way.
/// </summary>
public interface IReferenceModel
{
    int VocabSize { get; }

    int HiddenSize { get; }

    /// <summary>An empty sequence with room for <paramref name="capacity"/> positions (it may grow).</summary>
    IDisposable CreateSequence(int capacity);

    /// <summary>
    /// Appends <paramref name="tokens"/> to <paramref name="sequence"/>; logits [T, vocab] when
    /// <paramref name="allLogits"/>, else [1, vocab] for the last token. Fills <paramref name="trace"/> when given.
    /// </summary>
    float[] Forward(int[] tokens, IDisposable sequence, bool allLogits = false, ForwardTrace? trace = null);
}
