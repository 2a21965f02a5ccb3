using System.Text.Json.Nodes;
using Orleans.MoE.Models.Checkpoints;

namespace Orleans.MoE.Models.Tests.Checkpoints;

/// <summary>
/// A corrupt safetensors file fails on open with a CheckpointException naming the file (and the
/// tensor, where one is at fault) and what is wrong: never a crash, never garbage read later.
/// </summary>
public sealed class CorruptSafetensorsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("moe-safetensors-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string PathOf(string name) => Path.Combine(_directory, name);

    private static SafetensorsBuilder TwoTensors() => new SafetensorsBuilder().Counting("a", 2, 2).Counting("b", 2, 2);

    [Fact]
    public void The_builder_makes_files_that_open()
    {
        var path = TwoTensors().Metadata("format", "pt").WriteTo(PathOf("valid.safetensors"));
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(["a", "b"], file.Tensors.Select(t => t.Name).Order());
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal(16, file.Find("b")!.Offset);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(7)]
    public void A_file_shorter_than_the_header_length_field_is_truncated(int length)
    {
        var path = PathOf("short.safetensors");
        File.WriteAllBytes(path, new byte[length]);
        var error = AssertFails(path, "truncated");
        Assert.Contains($"{length} bytes", error.Message);
    }

    [Fact]
    public void Data_cut_short_leaves_the_last_tensors_offsets_past_the_end()
    {
        var path = TwoTensors().WriteTo(PathOf("cut.safetensors"), bytes => bytes[..^10]);
        var error = AssertFails(path, "lie outside the 22 bytes of data (file truncated?)", tensor: "b");
        Assert.DoesNotContain("tensor 'a'", error.Message);
    }

    [Fact]
    public void A_file_cut_inside_its_header_is_refused()
    {
        var path = TwoTensors().WriteTo(PathOf("cut-header.safetensors"), bytes => bytes[..20]);
        AssertFails(path, "runs past the end of the file (20 bytes): truncated");
    }

    [Theory]
    [InlineData(1_000_000UL)]
    [InlineData(ulong.MaxValue)]
    [InlineData(1UL << 63)]
    public void A_header_length_past_the_end_is_refused(ulong headerLength)
    {
        var path = TwoTensors().WriteTo(PathOf("long-header.safetensors"), bytes => SafetensorsBuilder.WithHeaderLength(bytes, headerLength));
        AssertFails(path, $"header length {headerLength} runs past the end of the file");
    }

    [Theory]
    [InlineData("{not json")]
    [InlineData("")]
    [InlineData("{\"a\": {\"dtype\": \"F32\"")]
    public void A_header_that_is_not_json_is_refused(string header)
    {
        var builder = TwoTensors();
        var path = PathOf("garbage.safetensors");
        File.WriteAllBytes(path, builder.Build(header));
        AssertFails(path, "header is not valid JSON");
    }

    [Theory]
    [InlineData("[1, 2]")]
    [InlineData("\"text\"")]
    [InlineData("42")]
    public void A_header_that_is_not_an_object_is_refused(string header)
    {
        var path = PathOf("array.safetensors");
        File.WriteAllBytes(path, TwoTensors().Build(header));
        AssertFails(path, "header must be a JSON object");
    }

    [Fact]
    public void Offsets_past_the_data_are_refused()
    {
        var path = TwoTensors().SetField("a", "data_offsets", new JsonArray(16, 1016)).SetField("a", "shape", new JsonArray(250)).WriteTo(PathOf("range.safetensors"));
        AssertFails(path, "data_offsets [16,1016] lie outside the 32 bytes of data", tensor: "a");
    }

    [Fact]
    public void Offsets_with_begin_after_end_are_refused()
    {
        var path = TwoTensors().SetField("b", "data_offsets", new JsonArray(32, 16)).WriteTo(PathOf("reversed.safetensors"));
        AssertFails(path, "data_offsets [32,16] are not a valid [begin, end] range", tensor: "b");
    }

    [Theory]
    [InlineData("[-16, 0]")]
    [InlineData("[0.5, 16]")]
    [InlineData("[\"0\", 16]")]
    [InlineData("[0, 16, 32]")]
    [InlineData("[16]")]
    public void Offsets_that_are_not_two_non_negative_integers_are_refused(string offsets)
    {
        var path = TwoTensors().SetField("a", "data_offsets", JsonNode.Parse(offsets)).WriteTo(PathOf("offsets.safetensors"));
        AssertFails(path, "data_offsets", tensor: "a");
    }

    [Fact]
    public void Overlapping_tensors_are_refused()
    {
        var path = TwoTensors().SetField("b", "data_offsets", new JsonArray(8, 24)).WriteTo(PathOf("overlap.safetensors"));
        AssertFails(path, "tensors 'a' and 'b' overlap in the data section");
    }

    [Fact]
    public void Two_tensors_at_the_same_offset_overlap()
    {
        var path = TwoTensors().SetField("b", "data_offsets", new JsonArray(0, 16)).WriteTo(PathOf("same.safetensors"));
        AssertFails(path, "overlap");
    }

    [Fact]
    public void Empty_tensors_may_share_an_offset()
    {
        var path = new SafetensorsBuilder().Counting("a", 2, 2).Add("empty", "F32", [0, 4], []).SetField("empty", "data_offsets", new JsonArray(4, 4)).WriteTo(PathOf("empty.safetensors"));
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(0, file.Find("empty")!.ByteLength);
    }

    [Theory]
    [InlineData("F8_E4M3")]
    [InlineData("I8")]
    [InlineData("f32")]
    public void An_unknown_dtype_is_refused(string dtype)
    {
        var path = new SafetensorsBuilder().Counting("a", 2, 2).Add("w", dtype, [4], new byte[4]).WriteTo(PathOf("fp8.safetensors"));
        AssertFails(path, $"unsupported dtype '{dtype}' (supported: F32, BF16, F16, I64)", tensor: "w");
    }

    [Fact]
    public void A_byte_size_that_does_not_match_the_shape_is_refused()
    {
        var path = new SafetensorsBuilder().Add("w", "BF16", [3, 3], new byte[16]).WriteTo(PathOf("size.safetensors"));
        AssertFails(path, "16 bytes of data, but shape [3, 3] of BF16 needs 18", tensor: "w");
    }

    [Fact]
    public void A_shape_whose_size_overflows_is_refused()
    {
        var path = new SafetensorsBuilder().Add("w", "F32", [4], new byte[16]).SetField("w", "shape", new JsonArray(1L << 40, 1L << 40)).WriteTo(PathOf("huge.safetensors"));
        AssertFails(path, "too large", tensor: "w");
    }

    [Theory]
    [InlineData("[-1]")]
    [InlineData("[2.5]")]
    [InlineData("[\"4\"]")]
    public void A_shape_that_is_not_non_negative_integers_is_refused(string shape)
    {
        var path = new SafetensorsBuilder().F32("w", [4], 1, 2, 3, 4).SetField("w", "shape", JsonNode.Parse(shape)).WriteTo(PathOf("shape.safetensors"));
        AssertFails(path, "shape must hold non-negative integers", tensor: "w");
    }

    [Theory]
    [InlineData("dtype")]
    [InlineData("shape")]
    [InlineData("data_offsets")]
    public void An_entry_without_a_required_field_is_refused(string field)
    {
        var path = TwoTensors().EditHeader(h => h["b"]!.AsObject().Remove(field)).WriteTo(PathOf("field.safetensors"));
        AssertFails(path, "entry must have a string 'dtype', an array 'shape' and an array 'data_offsets'", tensor: "b");
    }

    [Fact]
    public void An_entry_that_is_not_an_object_is_refused()
    {
        var path = TwoTensors().EditHeader(h => h["b"] = 7).WriteTo(PathOf("entry.safetensors"));
        AssertFails(path, "entry must have", tensor: "b");
    }

    [Fact]
    public void A_missing_file_is_named()
    {
        var path = PathOf("absent.safetensors");
        var error = Assert.Throws<CheckpointException>(() => SafetensorsFile.Open(path));
        Assert.Equal($"{path}: file not found", error.Message);
    }

    private static CheckpointException AssertFails(string path, string phrase, string? tensor = null)
    {
        var error = Assert.Throws<CheckpointException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.Contains(path, error.Message);
        Assert.Contains(phrase, error.Message);
        if (tensor is not null)
        {
            Assert.Contains($"tensor '{tensor}'", error.Message);
        }

        // Opening through a checkpoint reports the same.
        var again = Assert.Throws<CheckpointException>(() => Checkpoint.Open(path).Dispose());
        Assert.Equal(error.Message, again.Message);
        return error;
    }
}
