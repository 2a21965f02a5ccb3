using System.Text.Json.Nodes;
using Orleans.MoE.Models.Layers;
using Orleans.MoE.Models.Tests.TestData;
using Orleans.MoE.Models.Verification;
using Orleans.MoE.Tensors;

namespace Orleans.MoE.Models.Tests;

/// <summary>The same weights in other layouts a published checkpoint may use give the same outputs.</summary>
public sealed class CheckpointVariantTests : IDisposable
{
    private readonly List<string> _directories = [];

    public void Dispose()
    {
        foreach (var directory in _directories)
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Theory]
    [InlineData("qwen3moe-tiny", 3)]
    [InlineData("deepseekv3-tiny", 4)]
    public void A_resharded_checkpoint_reproduces_the_reference(string fixture, int shards)
    {
        var source = Path.Combine(RepositoryPaths.Fixtures, fixture);
        var directory = Track(SafetensorsWriter.CopyWithoutWeights(source));
        SafetensorsWriter.WriteSharded(directory, SafetensorsWriter.ReadAll(source), shards);

        using var model = ModelLoader.Load(directory);
        var checks = ReferenceVerifier.Verify(model, Path.Combine(directory, "reference.safetensors"), fixture).ToList();
        Assert.All(checks, c => Assert.True(c.Passed, $"{c.Check}: {c.MaxAbsDiff} > {c.Tolerance}"));
        Assert.Equal(shards, model.Checkpoint.TensorNames.Select(n => model.Checkpoint.Entry(n).File).Distinct().Count());
    }

    [Fact]
    public void A_checkpoint_of_symbolic_links_as_in_the_hugging_face_cache_reproduces_the_reference()
    {
        // snapshots/<revision>/model.safetensors -> ../../blobs/<hash>: every file a link to its content.
        var source = Path.Combine(RepositoryPaths.Fixtures, "olmoe-tiny");
        var directory = Track(Directory.CreateTempSubdirectory("moe-linked-").FullName);
        foreach (var file in Directory.GetFiles(source))
        {
            File.CreateSymbolicLink(Path.Combine(directory, Path.GetFileName(file)), file);
        }

        using var model = ModelLoader.Load(directory);
        var checks = ReferenceVerifier.Verify(model, Path.Combine(directory, "reference.safetensors"), "olmoe-tiny").ToList();
        Assert.All(checks, c => Assert.True(c.Passed, $"{c.Check}: {c.MaxAbsDiff} > {c.Tolerance}"));
    }

    [Fact]
    public void Tied_embeddings_serve_as_the_lm_head()
    {
        // mixtral-tiny with lm_head replaced by the embedding: once stored explicitly, once tied and absent.
        var source = Path.Combine(RepositoryPaths.Fixtures, "mixtral-tiny");
        var tensors = SafetensorsWriter.ReadAll(source);
        var embedding = tensors.Single(t => t.Name == "model.embed_tokens.weight");

        var explicitHead = Track(SafetensorsWriter.CopyWithoutWeights(source));
        SafetensorsWriter.Write(Path.Combine(explicitHead, "model.safetensors"),
            tensors.Select(t => t.Name == "lm_head.weight" ? t with { Data = embedding.Data } : t));

        var tied = Track(SafetensorsWriter.CopyWithoutWeights(source));
        SafetensorsWriter.Write(Path.Combine(tied, "model.safetensors"), tensors.Where(t => t.Name != "lm_head.weight"));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(tied, "config.json")))!;
        config["tie_word_embeddings"] = true;
        File.WriteAllText(Path.Combine(tied, "config.json"), config.ToJsonString());

        using var a = ModelLoader.Load(explicitHead);
        using var b = ModelLoader.Load(tied);
        int[] tokens = [1, 17, 300, 42, 9];
        Assert.Equal(a.Forward(tokens, a.CreateCache(), allLogits: true), b.Forward(tokens, b.CreateCache(), allLogits: true));
    }

    [Fact]
    public void An_absent_lm_head_with_untied_embeddings_is_a_clear_error()
    {
        var source = Path.Combine(RepositoryPaths.Fixtures, "mixtral-tiny");
        var directory = Track(SafetensorsWriter.CopyWithoutWeights(source));
        SafetensorsWriter.Write(Path.Combine(directory, "model.safetensors"), SafetensorsWriter.ReadAll(source).Where(t => t.Name != "lm_head.weight"));
        var error = Assert.Throws<Orleans.MoE.Models.Checkpoints.CheckpointException>(() => ModelLoader.Load(directory));
        Assert.Contains("lm_head.weight", error.Message);
        Assert.Contains("tie_word_embeddings is false", error.Message);
    }

    [Fact]
    public void Mixed_dtypes_are_read_each_in_its_own_dtype()
    {
        // Experts in f16, attention in bf16, the rest f32: every weight converts exactly, so the model's
        // outputs equal those of an all-f32 copy of the same (rounded) values.
        var source = Path.Combine(RepositoryPaths.Fixtures, "olmoe-tiny");
        var tensors = SafetensorsWriter.ReadAll(source);
        DType Choose(string name) => name.Contains(".experts.") ? DType.F16 : name.Contains(".self_attn.") && name.EndsWith("proj.weight") ? DType.BF16 : DType.F32;

        var mixed = Track(SafetensorsWriter.CopyWithoutWeights(source));
        SafetensorsWriter.Write(Path.Combine(mixed, "model.safetensors"), tensors.Select(t => SafetensorsWriter.Reencode(t, Choose(t.Name))));
        var widened = Track(SafetensorsWriter.CopyWithoutWeights(source));
        SafetensorsWriter.Write(Path.Combine(widened, "model.safetensors"), tensors.Select(t => SafetensorsWriter.Reencode(SafetensorsWriter.Reencode(t, Choose(t.Name)), DType.F32)));

        using var a = ModelLoader.Load(mixed);
        using var b = ModelLoader.Load(widened);
        int[] tokens = [3, 4, 5, 200, 511];
        var expected = b.Forward(tokens, b.CreateCache(), allLogits: true);
        var actual = a.Forward(tokens, a.CreateCache(), allLogits: true);
        Assert.All(expected.Zip(actual), p => Assert.Equal(p.First, p.Second, 1e-4f));

        // Weights stay in their stored dtype in memory (resident memory ≈ checkpoint size).
        var expert = ((SparseMoeBlock)a.Layers[0].FeedForward).Experts[0];
        Assert.Equal(DType.F16, expert.Gate.Weight.DType);
    }

    [Fact]
    public void Bf16_weights_stay_bf16_in_memory()
    {
        using var model = ModelLoader.Load(RepositoryPaths.DemoModel);
        var moe = (SparseMoeBlock)model.Layers[0].FeedForward;
        Assert.All(moe.Experts, e => Assert.Equal(DType.BF16, e.Down.Weight.DType));
        Assert.Equal(DType.BF16, moe.Router.Weight.DType);
    }

    [Fact]
    public void Deepseek_without_a_query_bottleneck_uses_q_proj()
    {
        // With input norms of ones, the attention input has unit RMS, so the bottleneck
        // q_b(norm(q_a(x))) with q_a = identity and a norm of ones equals q_proj(x) with q_proj = q_b.
        var source = Path.Combine(RepositoryPaths.Fixtures, "deepseekv3-tiny");
        var tensors = SafetensorsWriter.ReadAll(source)
            .Select(t => t.Name.EndsWith("input_layernorm.weight") ? Ones(t) : t).ToList();
        var hidden = (int)tensors.Single(t => t.Name == "model.norm.weight").Shape[0];

        var bottleneck = Track(SafetensorsWriter.CopyWithoutWeights(source));
        SafetensorsWriter.Write(Path.Combine(bottleneck, "model.safetensors"), tensors.SelectMany(t =>
            t.Name.EndsWith("q_a_proj.weight") ? [Identity(t.Name, hidden)]
            : t.Name.EndsWith("q_a_layernorm.weight") ? [Ones(t with { Shape = [hidden], Data = new byte[hidden * 4] })]
            : t.Name.EndsWith("q_b_proj.weight") ? [t with { Data = Widen(t, hidden), Shape = [t.Shape[0], hidden] }]
            : new[] { t }));
        SetConfig(bottleneck, "q_lora_rank", hidden);

        var direct = Track(SafetensorsWriter.CopyWithoutWeights(source));
        SafetensorsWriter.Write(Path.Combine(direct, "model.safetensors"), tensors
            .Where(t => !t.Name.Contains("q_a_"))
            .Select(t => t.Name.EndsWith("q_b_proj.weight") ? t with { Name = t.Name.Replace("q_b_proj", "q_proj"), Data = Widen(t, hidden), Shape = [t.Shape[0], hidden] } : t));
        SetConfig(direct, "q_lora_rank", null);

        using var a = ModelLoader.Load(bottleneck);
        using var b = ModelLoader.Load(direct);
        int[] tokens = [1, 5, 99, 256, 7, 7];
        var expected = a.Forward(tokens, a.CreateCache(), allLogits: true);
        var actual = b.Forward(tokens, b.CreateCache(), allLogits: true);
        Assert.All(expected.Zip(actual), p => Assert.Equal(p.First, p.Second, 1e-4f));
    }

    private static SafetensorsWriter.Tensor Ones(SafetensorsWriter.Tensor t) =>
        SafetensorsWriter.Reencode(t with { DType = DType.F32, Data = System.Runtime.InteropServices.MemoryMarshal.AsBytes(Enumerable.Repeat(1f, (int)t.Shape[0]).ToArray().AsSpan()).ToArray() }, t.DType);

    private static SafetensorsWriter.Tensor Identity(string name, int size)
    {
        var values = new float[size * size];
        for (var i = 0; i < size; i++)
        {
            values[(i * size) + i] = 1f;
        }

        return new SafetensorsWriter.Tensor(name, DType.F32, [size, size], System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
    }

    /// <summary>q_b_proj [out, rank] zero-padded to [out, hidden] so the identity bottleneck can feed it.</summary>
    private static byte[] Widen(SafetensorsWriter.Tensor t, int hidden)
    {
        var (rows, rank) = ((int)t.Shape[0], (int)t.Shape[1]);
        var source = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(SafetensorsWriter.Reencode(t, DType.F32).Data);
        var widened = new float[rows * hidden];
        for (var r = 0; r < rows; r++)
        {
            source.Slice(r * rank, rank).CopyTo(widened.AsSpan(r * hidden));
        }

        return System.Runtime.InteropServices.MemoryMarshal.AsBytes(widened.AsSpan()).ToArray();
    }

    private static void SetConfig(string directory, string field, int? value)
    {
        var path = Path.Combine(directory, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(path))!;
        config[field] = value;
        File.WriteAllText(path, config.ToJsonString());
    }

    private string Track(string directory)
    {
        _directories.Add(directory);
        return directory;
    }
}
