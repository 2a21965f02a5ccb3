using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Orleans.MoE.Models.Checkpoints;
using Orleans.MoE.Models.Checkpoints.Random;
using Orleans.MoE.Models.Configuration;
using Orleans.MoE.Models.Generation;

namespace Orleans.MoE.Models.Tests.Checkpoints;

/// <summary>Random checkpoints: laid out as transformers saves them, loadable, deterministic per seed, and decoded as the engine always decoded them.</summary>
public sealed class RandomCheckpointTests : IDisposable
{
    private readonly List<string> _directories = [];

    public static TheoryData<string> Fixtures => new()
    {
        "mixtral-tiny", "qwen2moe-tiny", "qwen3moe-tiny", "olmoe-tiny", "deepseekv3-tiny",
    };

    public void Dispose()
    {
        foreach (var directory in _directories)
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void The_layout_of_a_config_names_and_shapes_every_tensor_as_the_transformers_checkpoint_of_that_config(string fixture)
    {
        var directory = RepositoryPaths.Fixture(fixture);
        using var checkpoint = Checkpoint.Open(directory);
        var expected = checkpoint.TensorNames.Order(StringComparer.Ordinal)
            .Select(n => $"{n} [{string.Join(", ", checkpoint.Entry(n).Shape)}]");
        var layout = CheckpointLayout.For(ModelConfig.Load(directory)).Select(t => $"{t.Name} [{string.Join(", ", t.Shape)}]").Order(StringComparer.Ordinal);
        Assert.Equal(expected, layout);
    }

    [Theory]
    [InlineData("mixtral")]
    [InlineData("qwen2_moe")]
    [InlineData("qwen3_moe")]
    [InlineData("olmoe")]
    [InlineData("deepseek_v3")]
    public void Every_template_writes_a_sharded_bf16_checkpoint_with_an_index_that_loads_and_generates(string architecture)
    {
        var directory = Write(Small(architecture), seed: 3, maxShardBytes: 1 << 20);

        Assert.True(File.Exists(Path.Combine(directory, Checkpoint.IndexFileName)));
        Assert.True(File.Exists(Path.Combine(directory, "tokenizer.json")));
        using var model = ModelLoader.Load(directory);
        Assert.Equal(architecture, model.Config.ModelType);
        var entries = model.Checkpoint.TensorNames.Select(model.Checkpoint.Entry).ToList();
        Assert.True(entries.Select(e => e.File).Distinct().Count() > 1);
        Assert.All(entries.Where(e => !e.Name.EndsWith("e_score_correction_bias", StringComparison.Ordinal)), e => Assert.Equal(Tensors.DType.BF16, e.DType));
        Assert.Equal(12, GreedyDecoder.Generate(model, [1, 20, 300, 4000], 12).Length);
    }

    [Fact]
    public void The_same_seed_writes_the_same_bytes_whatever_the_sharding_and_another_seed_other_bytes()
    {
        var one = Write(Small("mixtral"), seed: 7, maxShardBytes: 1 << 20);
        var sharded = Write(Small("mixtral"), seed: 7, maxShardBytes: 1 << 30);
        var other = Write(Small("mixtral"), seed: 8, maxShardBytes: 1 << 20);

        using var a = Checkpoint.Open(one);
        using var b = Checkpoint.Open(sharded);
        using var c = Checkpoint.Open(other);
        const string Name = "model.layers.1.block_sparse_moe.experts.5.w2.weight";
        Assert.Equal(Digest(one), Digest(Write(Small("mixtral"), seed: 7, maxShardBytes: 1 << 20)));
        Assert.Equal(a.ReadSingles(Name), b.ReadSingles(Name));
        Assert.NotEqual(a.ReadSingles(Name), c.ReadSingles(Name));
        var values = a.ReadSingles(Name);
        Assert.InRange(Math.Sqrt(values.Average(v => (double)v * v)), 0.018, 0.022);
        Assert.All(a.ReadSingles("model.norm.weight"), v => Assert.Equal(1f, v));
    }

    /// <summary>
    /// Greedy ids the engine produced on these random checkpoints before its kernels were rewritten for
    /// speed (recorded from commit f333d79): hidden 256, experts of 512, weights of standard deviation 0.1
    /// (so the ids vary), a 40-token prompt (prefill with several tokens per expert) then 24 tokens
    /// through the KV cache.
    /// </summary>
    [Theory]
    [InlineData("mixtral", new[] { 3067, 2352, 3784, 1829, 3363, 205, 202, 2001, 28, 2739, 412, 1672, 3744, 1543, 2376, 3517, 272, 1217, 206, 2949, 1744, 2875, 3313, 4091 })]
    [InlineData("qwen2_moe", new[] { 886, 2833, 3256, 982, 2422, 596, 1195, 1683, 85, 3784, 1003, 284, 1332, 1280, 1471, 558, 1111, 3693, 3056, 3993, 3242, 2054, 1482, 2815 })]
    [InlineData("deepseek_v3", new[] { 1482, 786, 1114, 88, 1493, 1083, 676, 1459, 1981, 2597, 2038, 2065, 3421, 1052, 1671, 2022, 953, 1040, 3695, 1002, 1790, 2402, 3849, 2176 })]
    public void Greedy_ids_on_random_checkpoints_are_those_of_the_previous_engine(string architecture, int[] expected)
    {
        var config = Small(architecture);
        config["hidden_size"] = 256;
        config[RandomConfig.ExpertSizeField(architecture)] = 512;
        config["initializer_range"] = 0.1;
        using var model = ModelLoader.Load(Write(config, seed: 11, maxShardBytes: 1 << 30));
        var prompt = Enumerable.Range(0, 40).Select(i => 3 + (i * 7919 % 4000)).ToArray();

        Assert.Equal(expected, GreedyDecoder.Generate(model, prompt, 24));
    }

    /// <summary>A template scaled down: 2 layers, hidden 64, 8 experts of 96, 4 heads of 16.</summary>
    private static JsonObject Small(string architecture)
    {
        var config = RandomConfig.Template(architecture);
        foreach (var assignment in new[] { "hidden_size=64", "num_hidden_layers=2", "num_attention_heads=4", "num_key_value_heads=2", $"{RandomConfig.ExpertSizeField(architecture)}=96", "intermediate_size=128" })
        {
            RandomConfig.Set(config, assignment);
        }

        if (architecture == "qwen2_moe")
        {
            config["shared_expert_intermediate_size"] = 128;
        }

        if (architecture == "qwen3_moe")
        {
            config["head_dim"] = 16;
        }

        if (architecture == "deepseek_v3")
        {
            foreach (var assignment in new[] { "num_key_value_heads=4", "q_lora_rank=32", "kv_lora_rank=16", "qk_nope_head_dim=16", "qk_rope_head_dim=8", "v_head_dim=16", "head_dim=8" })
            {
                RandomConfig.Set(config, assignment);
            }
        }

        return config;
    }

    private string Write(JsonObject config, int seed, long maxShardBytes)
    {
        var directory = Path.Combine(Path.GetTempPath(), $"moe-random-{Guid.NewGuid():N}");
        _directories.Add(directory);
        RandomCheckpoint.Write(directory, config, seed, maxShardBytes, RepositoryPaths.DemoModel);
        return directory;
    }

    private static string Digest(string directory) =>
        string.Join(",", Directory.GetFiles(directory, "*.safetensors").Order(StringComparer.Ordinal).Select(f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)))));
}
