using System.Text;
using System.Text.Json;
using Orleans.MoE.Models.Checkpoints;
using Orleans.MoE.Models.Tests.TestData;
using Orleans.MoE.Tensors;

namespace Orleans.MoE.Models.Tests.Checkpoints;

/// <summary>Corrupt files fail with a CheckpointException naming the file (and tensor), never a crash or garbage.</summary>
public sealed class CorruptCheckpointTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("moe-corrupt-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void A_file_shorter_than_the_header_length_is_truncated()
    {
        var path = WriteBytes("short.safetensors", [1, 2, 3]);
        AssertFails(path, "truncated");
    }

    [Fact]
    public void A_header_length_past_the_end_is_refused()
    {
        var path = WriteBytes("long-header.safetensors", [.. BitConverter.GetBytes(1_000_000UL), .. "{}"u8]);
        AssertFails(path, "runs past the end of the file");
    }

    [Fact]
    public void A_header_that_is_not_json_is_refused()
    {
        var path = WriteHeader("garbage.safetensors", "{not json", 0);
        AssertFails(path, "not valid JSON");
    }

    [Fact]
    public void Data_cut_short_leaves_offsets_out_of_range()
    {
        var path = Path.Combine(_directory, "cut.safetensors");
        SafetensorsWriter.Write(path, [Tensor("a", 4, 4), Tensor("b", 4, 4)]);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^10]);
        AssertFails(path, "outside the", tensor: "b");
    }

    [Fact]
    public void Offsets_with_begin_after_end_are_refused()
    {
        var path = WriteHeader("reversed.safetensors", """{"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}""", 8);
        AssertFails(path, "not a valid [begin, end] range", tensor: "w");
    }

    [Fact]
    public void Overlapping_tensors_are_refused()
    {
        var path = WriteHeader("overlap.safetensors", """
            {"first": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
             "second": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}
            """, 24);
        AssertFails(path, "tensors 'first' and 'second' overlap");
    }

    [Fact]
    public void An_unknown_dtype_is_refused()
    {
        var path = WriteHeader("fp8.safetensors", """{"w": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}}""", 4);
        AssertFails(path, "unsupported dtype 'F8_E4M3'", tensor: "w");
    }

    [Fact]
    public void A_byte_size_that_does_not_match_the_shape_is_refused()
    {
        var path = WriteHeader("size.safetensors", """{"w": {"dtype": "BF16", "shape": [3, 3], "data_offsets": [0, 16]}}""", 16);
        AssertFails(path, "needs 18", tensor: "w");
    }

    [Fact]
    public void A_negative_dimension_is_refused()
    {
        var path = WriteHeader("negative.safetensors", """{"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}""", 4);
        AssertFails(path, "non-negative integers", tensor: "w");
    }

    [Fact]
    public void A_missing_tensor_is_named()
    {
        var path = Path.Combine(_directory, "model.safetensors");
        SafetensorsWriter.Write(path, [Tensor("present", 2, 2)]);
        using var checkpoint = Checkpoint.Open(_directory);
        var error = Assert.Throws<CheckpointException>(() => checkpoint.Matrix("absent.weight", 2, 2));
        Assert.Contains("tensor 'absent.weight' not found", error.Message);
        Assert.Contains(_directory, error.Message);
    }

    [Fact]
    public void A_shape_that_disagrees_with_the_config_is_named()
    {
        SafetensorsWriter.Write(Path.Combine(_directory, "model.safetensors"), [Tensor("w", 2, 3)]);
        using var checkpoint = Checkpoint.Open(_directory);
        var error = Assert.Throws<CheckpointException>(() => checkpoint.Matrix("w", 3, 2));
        Assert.Contains("tensor 'w' has shape [2, 3], the config implies [3, 2]", error.Message);
    }

    [Fact]
    public void An_index_naming_a_missing_shard_is_refused()
    {
        WriteIndex(new() { ["w"] = "model-00002-of-00002.safetensors" });
        var error = Assert.Throws<CheckpointException>(() => Checkpoint.Open(_directory));
        Assert.Contains("model.safetensors.index.json", error.Message);
        Assert.Contains("'model-00002-of-00002.safetensors', which does not exist", error.Message);
    }

    [Fact]
    public void A_shard_name_with_a_path_is_refused()
    {
        WriteIndex(new() { ["w"] = "../elsewhere.safetensors" });
        var error = Assert.Throws<CheckpointException>(() => Checkpoint.Open(_directory));
        Assert.Contains("invalid shard name", error.Message);
    }

    [Fact]
    public void A_tensor_missing_from_its_shard_is_named()
    {
        SafetensorsWriter.Write(Path.Combine(_directory, "a.safetensors"), [Tensor("x", 2, 2)]);
        WriteIndex(new() { ["x"] = "a.safetensors", ["y"] = "a.safetensors" });
        using var checkpoint = Checkpoint.Open(_directory);
        var error = Assert.Throws<CheckpointException>(() => checkpoint.Vector("y", 4));
        Assert.Contains("tensor 'y' is listed in model.safetensors.index.json but missing from the shard", error.Message);
        Assert.Contains("a.safetensors", error.Message);
    }

    [Fact]
    public void A_directory_without_weights_is_refused()
    {
        var error = Assert.Throws<CheckpointException>(() => Checkpoint.Open(_directory));
        Assert.Contains("neither model.safetensors nor model.safetensors.index.json", error.Message);
    }

    [Fact]
    public void Shards_open_lazily_so_an_untouched_corrupt_shard_does_not_matter()
    {
        SafetensorsWriter.Write(Path.Combine(_directory, "good.safetensors"), [Tensor("good", 2, 2)]);
        WriteBytes("bad.safetensors", [9, 9, 9]);
        WriteIndex(new() { ["good"] = "good.safetensors", ["bad"] = "bad.safetensors" });
        using var checkpoint = Checkpoint.Open(_directory);
        Assert.Equal([0f, 1f, 2f, 3f], checkpoint.Matrix("good", 2, 2).ToArray());
        var error = Assert.Throws<CheckpointException>(() => checkpoint.Entry("bad"));
        Assert.Contains("bad.safetensors", error.Message);
    }

    [Fact]
    public void Loading_a_model_with_a_truncated_checkpoint_names_the_file()
    {
        foreach (var file in Directory.GetFiles(Path.Combine(RepositoryPaths.Fixtures, "mixtral-tiny")))
        {
            File.Copy(file, Path.Combine(_directory, Path.GetFileName(file)));
        }

        var weights = Path.Combine(_directory, "model.safetensors");
        File.WriteAllBytes(weights, File.ReadAllBytes(weights)[..^1000]);
        var error = Assert.Throws<CheckpointException>(() => ModelLoader.Load(_directory));
        Assert.Contains(weights, error.Message);
    }

    [Fact]
    public void Values_of_every_dtype_read_back_exactly()
    {
        float[] values = [0f, -1.5f, 3.140625f, 65504f, -2.0e-3f, 1e-5f];
        var path = Path.Combine(_directory, "dtypes.safetensors");
        var f32 = new SafetensorsWriter.Tensor("f32", DType.F32, [values.Length], Bytes(values));
        SafetensorsWriter.Write(path,
        [
            f32,
            SafetensorsWriter.Reencode(f32 with { Name = "bf16" }, DType.BF16),
            SafetensorsWriter.Reencode(f32 with { Name = "f16" }, DType.F16),
            new SafetensorsWriter.Tensor("i64", DType.I64, [3], Bytes<long>([-7, 0, long.MaxValue])),
        ]);

        using var checkpoint = Checkpoint.Open(path);
        Assert.Equal(values, checkpoint.ReadSingles("f32"));
        Assert.Equal(values.Select(v => DTypeConvert.BFloat16ToSingle(DTypeConvert.SingleToBFloat16(v))), checkpoint.ReadSingles("bf16"));
        Assert.Equal(values.Select(v => (float)(Half)v), checkpoint.ReadSingles("f16"));
        Assert.Equal([-7L, 0L, long.MaxValue], checkpoint.ReadInt64s("i64"));
        Assert.Equal(-1.5f, checkpoint.ReadSingles("bf16")[1]);
        var error = Assert.Throws<CheckpointException>(() => checkpoint.ReadInt64s("f32"));
        Assert.Contains("expected I64", error.Message);
    }

    [Fact]
    public void The_demo_models_tensor_bytes_are_its_shards_data()
    {
        using var checkpoint = Checkpoint.Open(RepositoryPaths.DemoModel);
        var shards = Directory.GetFiles(RepositoryPaths.DemoModel, "model-*.safetensors");
        var dataBytes = shards.Sum(f =>
        {
            using var stream = File.OpenRead(f);
            var header = new byte[8];
            stream.ReadExactly(header);
            return stream.Length - 8 - (long)BitConverter.ToUInt64(header);
        });
        Assert.Equal(dataBytes, checkpoint.TensorBytes());
    }

    private static SafetensorsWriter.Tensor Tensor(string name, int rows, int cols) =>
        new(name, DType.F32, [rows, cols], Bytes(Enumerable.Range(0, rows * cols).Select(i => (float)i).ToArray()));

    private static byte[] Bytes<T>(T[] values)
        where T : unmanaged => System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    private string WriteBytes(string name, byte[] bytes)
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private string WriteHeader(string name, string header, int dataBytes)
    {
        var json = Encoding.UTF8.GetBytes(header);
        return WriteBytes(name, [.. BitConverter.GetBytes((ulong)json.Length), .. json, .. new byte[dataBytes]]);
    }

    private void WriteIndex(Dictionary<string, string> map) =>
        File.WriteAllText(Path.Combine(_directory, Checkpoint.IndexFileName), JsonSerializer.Serialize(new { weight_map = map }));

    private static void AssertFails(string path, string phrase, string? tensor = null)
    {
        var error = Assert.Throws<CheckpointException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.Contains(path, error.Message);
        Assert.Contains(phrase, error.Message);
        if (tensor is not null)
        {
            Assert.Contains($"tensor '{tensor}'", error.Message);
        }
    }
}
