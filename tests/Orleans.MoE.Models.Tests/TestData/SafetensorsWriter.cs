using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Orleans.MoE.Models.Checkpoints;
using Orleans.MoE.Tensors;

namespace Orleans.MoE.Models.Tests.TestData;

/// <summary>Writes safetensors files for tests: copies of real checkpoints, resharded or re-encoded.</summary>
internal static class SafetensorsWriter
{
    public sealed record Tensor(string Name, DType DType, long[] Shape, byte[] Data);

    public static void Write(string path, IEnumerable<Tensor> tensors)
    {
        var list = tensors.ToList();
        var header = new Dictionary<string, object> { ["__metadata__"] = new Dictionary<string, string> { ["format"] = "pt" } };
        long offset = 0;
        foreach (var t in list)
        {
            header[t.Name] = new Dictionary<string, object>
            {
                ["dtype"] = t.DType.ToString(),
                ["shape"] = t.Shape,
                ["data_offsets"] = new[] { offset, offset + t.Data.Length },
            };
            offset += t.Data.Length;
        }

        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        var padded = (json.Length + 7) / 8 * 8;
        using var file = File.Create(path);
        file.Write(BitConverter.GetBytes((ulong)padded));
        file.Write(json);
        file.Write(Enumerable.Repeat((byte)' ', padded - json.Length).ToArray());
        foreach (var t in list)
        {
            file.Write(t.Data);
        }
    }

    /// <summary>Every tensor of a checkpoint with its raw bytes.</summary>
    public static List<Tensor> ReadAll(string modelDirectory)
    {
        using var checkpoint = Checkpoint.Open(modelDirectory);
        return checkpoint.TensorNames.Order(StringComparer.Ordinal).Select(name =>
        {
            var entry = checkpoint.Entry(name);
            var bytes = entry.DType switch
            {
                DType.I64 => MemoryMarshal.AsBytes(checkpoint.ReadInt64s(name).AsSpan()).ToArray(),
                _ => Encode(checkpoint.ReadSingles(name), entry.DType),
            };
            return new Tensor(name, entry.DType, entry.Shape, bytes);
        }).ToList();
    }

    /// <summary>Writes the tensors as <paramref name="shards"/> shard files plus model.safetensors.index.json.</summary>
    public static void WriteSharded(string directory, IReadOnlyList<Tensor> tensors, int shards)
    {
        var map = new Dictionary<string, string>();
        var perShard = (tensors.Count + shards - 1) / shards;
        for (var s = 0; s < shards; s++)
        {
            var name = $"model-{s + 1:00000}-of-{shards:00000}.safetensors";
            var part = tensors.Skip(s * perShard).Take(perShard).ToList();
            Write(Path.Combine(directory, name), part);
            foreach (var t in part)
            {
                map[t.Name] = name;
            }
        }

        File.WriteAllText(Path.Combine(directory, Checkpoint.IndexFileName), JsonSerializer.Serialize(new { metadata = new { total_size = tensors.Sum(t => t.Data.Length) }, weight_map = map }));
    }

    /// <summary>A temporary copy of a fixture's directory without its safetensors (config and reference only).</summary>
    public static string CopyWithoutWeights(string fixture)
    {
        var directory = Directory.CreateTempSubdirectory("moe-test-").FullName;
        foreach (var file in Directory.GetFiles(fixture).Where(f => !Path.GetFileName(f).StartsWith("model", StringComparison.Ordinal)))
        {
            File.Copy(file, Path.Combine(directory, Path.GetFileName(file)));
        }

        return directory;
    }

    /// <summary>The tensor's values stored as another dtype (rounding as PyTorch does).</summary>
    public static unsafe Tensor Reencode(Tensor tensor, DType dtype)
    {
        if (tensor.DType == dtype)
        {
            return tensor;
        }

        var floats = new float[tensor.Data.Length / tensor.DType.Size()];
        fixed (byte* data = tensor.Data)
        {
            DTypeConvert.ToSingle((nint)data, tensor.DType, floats);
        }

        return tensor with { DType = dtype, Data = Encode(floats, dtype) };
    }

    private static byte[] Encode(float[] values, DType dtype) => dtype switch
    {
        DType.F32 => MemoryMarshal.AsBytes(values.AsSpan()).ToArray(),
        DType.BF16 => MemoryMarshal.AsBytes(values.Select(DTypeConvert.SingleToBFloat16).ToArray().AsSpan()).ToArray(),
        DType.F16 => MemoryMarshal.AsBytes(values.Select(f => (Half)f).ToArray().AsSpan()).ToArray(),
        _ => throw new NotSupportedException(dtype.ToString()),
    };
}
