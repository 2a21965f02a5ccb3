using System.Text.Json;
using Orleans.MoE.Models.Checkpoints;
using Orleans.MoE.Tensors;

namespace Orleans.MoE.Models.Tests.Checkpoints;

/// <summary>
/// Model directories (one file or shards named by an index): clear errors naming the file and tensor
/// for everything missing or inconsistent, lazy opening of shards, and values read back exactly.
/// </summary>
public sealed class CheckpointTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("moe-checkpoint-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string PathOf(string name) => Path.Combine(_directory, name);

    private string IndexPath => PathOf(Checkpoint.IndexFileName);

    private void WriteIndex(Dictionary<string, string> map) =>
        File.WriteAllText(IndexPath, JsonSerializer.Serialize(new { metadata = new { total_size = 0 }, weight_map = map }));

    [Fact]
    public void A_missing_tensor_is_named_with_the_checkpoint()
    {
        new SafetensorsBuilder().Counting("present", 2, 2).WriteTo(PathOf(Checkpoint.SingleFileName));
        using var checkpoint = Checkpoint.Open(_directory);
        Assert.False(checkpoint.Contains("absent.weight"));
        var error = Assert.Throws<CheckpointException>(() => checkpoint.Matrix("absent.weight", 2, 2));
        Assert.Equal($"{PathOf(Checkpoint.SingleFileName)}: tensor 'absent.weight' not found in the checkpoint", error.Message);
        Assert.Contains("tensor 'absent.weight' not found", Assert.Throws<CheckpointException>(() => checkpoint.Vector("absent.weight", 4)).Message);
        Assert.Contains("tensor 'absent.weight' not found", Assert.Throws<CheckpointException>(() => checkpoint.Entry("absent.weight")).Message);
    }

    [Fact]
    public void A_tensor_mapped_on_its_own_reads_what_the_whole_file_view_reads()
    {
        new SafetensorsBuilder().Counting("a", 3, 5).Counting("b", 4, 7).WriteTo(PathOf(Checkpoint.SingleFileName));
        using var checkpoint = Checkpoint.Open(_directory);

        using (var mapped = checkpoint.MapMatrix("b", 4, 7))
        {
            mapped.Prefetch();
            Assert.Equal(checkpoint.Matrix("b", 4, 7).ToArray(), mapped.Matrix.ToArray());
        }

        Assert.Contains("has shape [4, 7]", Assert.Throws<CheckpointException>(() => checkpoint.MapMatrix("b", 7, 4)).Message);
        Assert.Equal(14f, checkpoint.Matrix("a", 3, 5).ToArray()[14]);
    }

    [Fact]
    public void A_missing_tensor_of_a_sharded_checkpoint_names_the_directory()
    {
        new SafetensorsBuilder().Counting("x", 2, 2).WriteTo(PathOf("a.safetensors"));
        WriteIndex(new() { ["x"] = "a.safetensors" });
        using var checkpoint = Checkpoint.Open(_directory);
        var error = Assert.Throws<CheckpointException>(() => checkpoint.ReadSingles("y"));
        Assert.Equal($"{_directory}: tensor 'y' not found in the checkpoint", error.Message);
    }

    [Fact]
    public void A_shape_that_disagrees_with_what_is_asked_is_named()
    {
        var file = new SafetensorsBuilder().Counting("w", 2, 3).F32("norm", [3], 1, 2, 3).WriteTo(PathOf(Checkpoint.SingleFileName));
        using var checkpoint = Checkpoint.Open(_directory);
        var error = Assert.Throws<CheckpointException>(() => checkpoint.Matrix("w", 3, 2));
        Assert.Equal($"{file}: tensor 'w' has shape [2, 3], the config implies [3, 2]", error.Message);
        error = Assert.Throws<CheckpointException>(() => checkpoint.Vector("norm", 4));
        Assert.Equal($"{file}: tensor 'norm' has shape [3], the config implies [4]", error.Message);
        error = Assert.Throws<CheckpointException>(() => checkpoint.Vector("w", 6));
        Assert.Contains("tensor 'w' has shape [2, 3]", error.Message);
        Assert.Equal([0f, 1f, 2f, 3f, 4f, 5f], checkpoint.Matrix("w", 2, 3).ToArray());
    }

    [Fact]
    public void An_integer_tensor_is_not_a_weight_matrix()
    {
        var file = new SafetensorsBuilder().Add("ids", "I64", [2, 2], SafetensorsBuilder.Bytes<long>(1, 2, 3, 4)).WriteTo(PathOf(Checkpoint.SingleFileName));
        using var checkpoint = Checkpoint.Open(_directory);
        var error = Assert.Throws<CheckpointException>(() => checkpoint.Matrix("ids", 2, 2));
        Assert.Contains(file, error.Message);
        Assert.Contains("tensor 'ids' is I64, expected a floating-point dtype", error.Message);
        error = Assert.Throws<CheckpointException>(() => checkpoint.ReadSingles("ids"));
        Assert.Contains("tensor 'ids' is I64, expected a floating-point dtype", error.Message);
    }

    [Fact]
    public void A_float_tensor_is_not_token_ids()
    {
        var file = new SafetensorsBuilder().Counting("logits", 1, 2).WriteTo(PathOf("reference.safetensors"));
        using var checkpoint = Checkpoint.Open(file);
        var error = Assert.Throws<CheckpointException>(() => checkpoint.ReadInt64s("logits"));
        Assert.Equal($"{file}: tensor 'logits' is F32, expected I64", error.Message);
    }

    [Fact]
    public void An_index_naming_a_missing_shard_is_refused()
    {
        new SafetensorsBuilder().Counting("a", 2, 2).WriteTo(PathOf("model-00001-of-00002.safetensors"));
        WriteIndex(new() { ["a"] = "model-00001-of-00002.safetensors", ["b"] = "model-00002-of-00002.safetensors" });
        var error = Assert.Throws<CheckpointException>(() => Checkpoint.Open(_directory));
        Assert.Equal($"{IndexPath}: tensor 'b' is in shard 'model-00002-of-00002.safetensors', which does not exist", error.Message);
    }

    [Fact]
    public void A_tensor_missing_from_its_shard_is_named()
    {
        var shard = new SafetensorsBuilder().Counting("x", 2, 2).WriteTo(PathOf("a.safetensors"));
        WriteIndex(new() { ["x"] = "a.safetensors", ["y"] = "a.safetensors" });
        using var checkpoint = Checkpoint.Open(_directory);
        Assert.True(checkpoint.Contains("y"));
        var error = Assert.Throws<CheckpointException>(() => checkpoint.Vector("y", 4));
        Assert.Equal($"{shard}: tensor 'y' is listed in model.safetensors.index.json but missing from the shard", error.Message);
        Assert.Equal([0f, 1f, 2f, 3f], checkpoint.Matrix("x", 2, 2).ToArray());
    }

    [Theory]
    [InlineData("../elsewhere.safetensors")]
    [InlineData("sub/shard.safetensors")]
    [InlineData("sub\\shard.safetensors")]
    [InlineData("/tmp/shard.safetensors")]
    [InlineData(".hidden.safetensors")]
    [InlineData("..")]
    [InlineData("")]
    public void A_shard_name_with_a_path_is_refused(string shard)
    {
        // Even where the named file exists, only plain names of files beside the index are accepted.
        Directory.CreateDirectory(PathOf("sub"));
        new SafetensorsBuilder().Counting("w", 2, 2).WriteTo(PathOf(Path.Combine("sub", "shard.safetensors")));
        new SafetensorsBuilder().Counting("w", 2, 2).WriteTo(PathOf(".hidden.safetensors"));
        WriteIndex(new() { ["w"] = shard });
        var error = Assert.Throws<CheckpointException>(() => Checkpoint.Open(_directory));
        Assert.Contains(IndexPath, error.Message);
        Assert.Contains("tensor 'w' maps to an invalid shard name", error.Message);
    }

    [Fact]
    public void A_shard_name_that_is_not_a_string_is_refused()
    {
        File.WriteAllText(IndexPath, """{"weight_map": {"w": 3}}""");
        var error = Assert.Throws<CheckpointException>(() => Checkpoint.Open(_directory));
        Assert.Equal($"{IndexPath}: tensor 'w' maps to an invalid shard name 3", error.Message);
    }

    [Theory]
    [InlineData("{\"weight_map\": ", "not valid JSON")]
    [InlineData("{\"metadata\": {}}", "no 'weight_map' object")]
    [InlineData("{\"weight_map\": [\"a.safetensors\"]}", "no 'weight_map' object")]
    public void An_index_that_is_not_a_weight_map_is_refused(string index, string phrase)
    {
        File.WriteAllText(IndexPath, index);
        var error = Assert.Throws<CheckpointException>(() => Checkpoint.Open(_directory));
        Assert.StartsWith($"{IndexPath}: ", error.Message);
        Assert.Contains(phrase, error.Message);
    }

    [Fact]
    public void A_directory_with_neither_file_is_refused()
    {
        File.WriteAllText(PathOf("config.json"), "{}");
        File.WriteAllBytes(PathOf("pytorch_model.bin"), [1, 2, 3]);
        var error = Assert.Throws<CheckpointException>(() => Checkpoint.Open(_directory));
        Assert.Equal($"{_directory}: neither model.safetensors nor model.safetensors.index.json found", error.Message);
    }

    [Fact]
    public void A_path_that_does_not_exist_is_refused()
    {
        var path = PathOf("no-such-model");
        var error = Assert.Throws<CheckpointException>(() => Checkpoint.Open(path));
        Assert.Equal($"{path}: no such model directory or safetensors file", error.Message);
    }

    [Fact]
    public void Shards_open_lazily_so_an_untouched_corrupt_shard_does_not_matter()
    {
        var good = new SafetensorsBuilder().Counting("good.a", 2, 2).F32("good.b", [3], 7, 8, 9).WriteTo(PathOf("good.safetensors"));
        var bad = PathOf("bad.safetensors");
        File.WriteAllBytes(bad, [9, 9, 9]);
        WriteIndex(new() { ["good.a"] = "good.safetensors", ["bad.x"] = "bad.safetensors", ["good.b"] = "good.safetensors" });

        using var checkpoint = Checkpoint.Open(_directory);
        Assert.Equal(["bad.x", "good.a", "good.b"], checkpoint.TensorNames.Order());
        Assert.True(checkpoint.Contains("bad.x"));
        Assert.Equal(0, checkpoint.TensorBytes(openAll: false));

        Assert.Equal([0f, 1f, 2f, 3f], checkpoint.Matrix("good.a", 2, 2).ToArray());
        Assert.Equal([7f, 8f, 9f], checkpoint.Vector("good.b", 3));
        Assert.Equal(16 + 12, checkpoint.TensorBytes(openAll: false));
        Assert.Equal(good, checkpoint.Entry("good.a").File);

        var error = Assert.Throws<CheckpointException>(() => checkpoint.Entry("bad.x"));
        Assert.Equal($"{bad}: truncated: 3 bytes, too short for the 8-byte header length", error.Message);
        Assert.Throws<CheckpointException>(() => checkpoint.TensorBytes(openAll: true));

        // The good shard is still readable after the bad one failed.
        Assert.Equal([7f, 8f, 9f], checkpoint.Vector("good.b", 3));
    }

    [Fact]
    public void F32_bf16_f16_and_i64_read_back_their_values()
    {
        // Raw bit patterns with known values: negative, subnormal, smallest normal, largest finite, infinite.
        ushort[] bf16 = [0x3F80, 0xBFC0, 0x4049, 0x0001, 0x0080, 0x7F7F, 0xC2F7, 0xFF80];
        float[] bf16Values = [1f, -1.5f, 3.140625f, MathF.Pow(2, -133), MathF.Pow(2, -126), 3.3895314e38f, -123.5f, float.NegativeInfinity];
        ushort[] f16 = [0x3C00, 0xC000, 0x0001, 0x0400, 0x7BFF, 0xFBFF, 0x3555, 0x7C00];
        float[] f16Values = [1f, -2f, MathF.Pow(2, -24), MathF.Pow(2, -14), 65504f, -65504f, 0.333251953125f, float.PositiveInfinity];
        float[] f32Values = [0f, -1.5f, float.Epsilon, float.MaxValue, -1e-30f, 123456.79f, float.MinValue, 0.1f];
        long[] ids = [-7, 0, long.MaxValue, long.MinValue];

        var path = new SafetensorsBuilder()
            .Add("f32", "F32", [2, 4], SafetensorsBuilder.Bytes(f32Values))
            .Add("bf16", "BF16", [2, 4], SafetensorsBuilder.Bytes(bf16))
            .Add("f16", "F16", [8], SafetensorsBuilder.Bytes(f16))
            .Add("i64", "I64", [1, 4], SafetensorsBuilder.Bytes(ids))
            .WriteTo(PathOf("dtypes.safetensors"));

        using var checkpoint = Checkpoint.Open(path);
        Assert.Equal(f32Values, checkpoint.ReadSingles("f32"));
        Assert.Equal(bf16Values, checkpoint.ReadSingles("bf16"));
        Assert.Equal(f16Values, checkpoint.ReadSingles("f16"));
        Assert.Equal(ids, checkpoint.ReadInt64s("i64"));
        Assert.Equal(f16Values, checkpoint.Vector("f16", 8));

        var matrix = checkpoint.Matrix("bf16", 2, 4);
        Assert.Equal(DType.BF16, matrix.DType);
        Assert.Equal(bf16Values, matrix.ToArray());
        Assert.Equal(bf16Values[4..], matrix.SliceRows(1, 1).ToArray());
        Assert.Equal(DType.F16, checkpoint.Entry("f16").DType);
        Assert.Equal([1L, 4L], checkpoint.Entry("i64").Shape);
    }

    [Fact]
    public void A_single_file_opens_as_a_file_and_as_a_directory()
    {
        var file = new SafetensorsBuilder().Counting("w", 3, 2).WriteTo(PathOf(Checkpoint.SingleFileName));
        using var byDirectory = Checkpoint.Open(_directory);
        using var byFile = Checkpoint.Open(file);
        Assert.Equal(file, byDirectory.Location);
        Assert.Equal(byFile.Matrix("w", 3, 2).ToArray(), byDirectory.Matrix("w", 3, 2).ToArray());
        Assert.Equal(24, byDirectory.TensorBytes(openAll: false));
    }

    [Fact]
    public void The_demo_model_opens_and_its_tensor_bytes_are_its_shards_data()
    {
        var directory = RepositoryPaths.DemoModel;
        using var checkpoint = Checkpoint.Open(directory);
        var shards = Directory.GetFiles(directory, "model-*.safetensors");
        Assert.True(shards.Length >= 2, "the demo model is sharded");
        var dataBytes = shards.Sum(f =>
        {
            using var stream = File.OpenRead(f);
            var header = new byte[8];
            stream.ReadExactly(header);
            return stream.Length - 8 - (long)BitConverter.ToUInt64(header);
        });

        using var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, Checkpoint.IndexFileName)));
        var names = index.RootElement.GetProperty("weight_map").EnumerateObject().Select(p => p.Name).Order().ToArray();
        Assert.Equal(names, checkpoint.TensorNames.Order());
        Assert.Equal(0, checkpoint.TensorBytes(openAll: false));
        Assert.Equal(dataBytes, checkpoint.TensorBytes());
        Assert.All(names, n => Assert.Equal(DType.BF16, checkpoint.Entry(n).DType));
    }

    [Fact]
    public void Loading_a_model_with_a_truncated_checkpoint_names_the_file()
    {
        foreach (var file in Directory.GetFiles(Path.Combine(RepositoryPaths.Fixtures, "mixtral-tiny")))
        {
            File.Copy(file, PathOf(Path.GetFileName(file)));
        }

        var weights = PathOf(Checkpoint.SingleFileName);
        File.WriteAllBytes(weights, File.ReadAllBytes(weights)[..^1000]);
        var error = Assert.Throws<CheckpointException>(() => ModelLoader.Load(_directory));
        Assert.StartsWith($"{weights}: tensor '", error.Message);
        Assert.Contains("(file truncated?)", error.Message);
    }
}
