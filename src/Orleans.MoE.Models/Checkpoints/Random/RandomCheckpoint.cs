using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Orleans.MoE.Models.Configuration;
using Orleans.MoE.Tensors;

namespace Orleans.MoE.Models.Checkpoints.Random;

/// <summary>What <see cref="RandomCheckpoint.Write"/> wrote: shard files, tensors, parameters and bytes.</summary>
public sealed record RandomCheckpointSummary(string Directory, string ModelType, int Shards, int Tensors, long Parameters, long Bytes);

/// <summary>
/// Writes a random-weight Hugging Face checkpoint for a config: config.json, bf16 safetensors shards
/// (model-0000i-of-0000n.safetensors, at most a given size each) with model.safetensors.index.json,
/// and a tokenizer's files. Every weight is uniform with the config's initializer_range as standard
/// deviation, norms are 1 and DeepSeek-V3's score-correction biases 0. Values depend only on the seed
/// and the tensor's name (a counter-based generator), so a seed gives the same bytes whatever the
/// sharding or the number of threads.
/// </summary>
public static class RandomCheckpoint
{
    /// <summary>Tokenizer files copied from the tokenizer directory when it has them.</summary>
    private static readonly string[] s_tokenizerFiles = ["tokenizer.json", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json"];

    private static readonly JsonSerializerOptions s_indented = new() { WriteIndented = true };

    /// <summary>Elements generated per step (one parallel loop).</summary>
    private const int Chunk = 1 << 22;

    public static RandomCheckpointSummary Write(string directory, JsonObject config, int seed, long maxShardBytes = 2L << 30, string? tokenizerDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        var json = config.ToJsonString(s_indented);
        var model = ModelConfig.Parse(json, Path.Combine(directory, "config.json"));
        var layout = CheckpointLayout.For(model);
        var std = model.SingleField("initializer_range") ?? 0.02f;

        // Shards in layout order, as transformers fills them.
        var shards = new List<List<TensorSpec>> { new() };
        long shardBytes = 0;
        foreach (var tensor in layout)
        {
            if (shardBytes > 0 && shardBytes + tensor.ByteLength > maxShardBytes)
            {
                shards.Add([]);
                shardBytes = 0;
            }

            shards[^1].Add(tensor);
            shardBytes += tensor.ByteLength;
        }

        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "config.json"), json);
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (var s = 0; s < shards.Count; s++)
        {
            var file = $"model-{s + 1:D5}-of-{shards.Count:D5}.safetensors";
            WriteShard(Path.Combine(directory, file), shards[s], seed, std);
            foreach (var tensor in shards[s])
            {
                weightMap[tensor.Name] = file;
            }
        }

        var totalBytes = layout.Sum(t => t.ByteLength);
        var index = new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = totalBytes },
            ["weight_map"] = new JsonObject(weightMap.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))),
        };
        File.WriteAllText(Path.Combine(directory, Checkpoint.IndexFileName), index.ToJsonString(s_indented));
        if (tokenizerDirectory is not null)
        {
            foreach (var name in s_tokenizerFiles.Where(n => File.Exists(Path.Combine(tokenizerDirectory, n))))
            {
                File.Copy(Path.Combine(tokenizerDirectory, name), Path.Combine(directory, name), overwrite: true);
            }
        }

        return new RandomCheckpointSummary(directory, model.ModelType, shards.Count, layout.Count, layout.Sum(t => t.Elements), totalBytes);
    }

    private static void WriteShard(string path, List<TensorSpec> tensors, int seed, float std)
    {
        var header = new JsonObject { ["__metadata__"] = new JsonObject { ["format"] = "pt" } };
        long offset = 0;
        foreach (var tensor in tensors)
        {
            header[tensor.Name] = new JsonObject
            {
                ["dtype"] = tensor.DType.ToString(),
                ["shape"] = new JsonArray(tensor.Shape.Select(d => (JsonNode?)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + tensor.ByteLength),
            };
            offset += tensor.ByteLength;
        }

        var headerBytes = Encoding.UTF8.GetBytes(header.ToJsonString());
        var padded = (headerBytes.Length + 7) / 8 * 8;
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        file.Write(BitConverter.GetBytes((ulong)padded));
        file.Write(headerBytes);
        file.Write(Enumerable.Repeat((byte)' ', padded - headerBytes.Length).ToArray());
        var values = new float[Chunk];
        var bytes = new byte[Chunk * sizeof(float)];
        foreach (var tensor in tensors)
        {
            for (long start = 0; start < tensor.Elements; start += Chunk)
            {
                var count = (int)Math.Min(Chunk, tensor.Elements - start);
                Fill(tensor, seed, std, start, values.AsSpan(0, count));
                file.Write(bytes, 0, Encode(values.AsSpan(0, count), tensor.DType, bytes));
            }
        }
    }

    /// <summary>Elements [start, start + destination.Length) of a tensor.</summary>
    private static void Fill(TensorSpec tensor, int seed, float std, long start, Span<float> destination)
    {
        if (tensor.Name.EndsWith("norm.weight", StringComparison.Ordinal))
        {
            destination.Fill(1f);
            return;
        }

        if (tensor.Name.EndsWith("e_score_correction_bias", StringComparison.Ordinal))
        {
            destination.Clear();
            return;
        }

        // Uniform on [-a, a] has standard deviation a / √3.
        var scale = std * MathF.Sqrt(3f);
        var key = Mix(((ulong)(uint)seed << 32) ^ NameHash(tensor.Name));
        const int Block = 1 << 16;
        var count = destination.Length;
        var blocks = (count + Block - 1) / Block;
        unsafe
        {
            fixed (float* pointer = destination)
            {
                var target = (nint)pointer;
                Parallel.For(0, blocks, b =>
                {
                    var output = (float*)target;
                    var end = Math.Min(count, (b + 1) * Block);
                    for (var i = b * Block; i < end; i++)
                    {
                        var bits = Mix(key + ((ulong)(start + i) * 0x9E3779B97F4A7C15UL));
                        output[i] = ((((long)(bits >> 40)) - (1 << 23)) / (float)(1 << 23)) * scale;
                    }
                });
            }
        }
    }

    private static int Encode(ReadOnlySpan<float> values, DType dtype, byte[] bytes)
    {
        switch (dtype)
        {
            case DType.F32:
                System.Runtime.InteropServices.MemoryMarshal.AsBytes(values).CopyTo(bytes);
                return values.Length * sizeof(float);
            case DType.BF16:
                var target = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(bytes.AsSpan());
                for (var i = 0; i < values.Length; i++)
                {
                    target[i] = DTypeConvert.SingleToBFloat16(values[i]);
                }

                return values.Length * sizeof(ushort);
            default:
                throw new NotSupportedException($"random checkpoints store F32 or BF16, not {dtype}");
        }
    }

    /// <summary>SplitMix64's finaliser: a well-mixed 64-bit value from a counter.</summary>
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>FNV-1a of the name's UTF-16 code units (stable across runs, unlike string.GetHashCode).</summary>
    private static ulong NameHash(string name)
    {
        var hash = 0xCBF29CE484222325UL;
        foreach (var c in name)
        {
            hash = (hash ^ c) * 0x100000001B3UL;
        }

        return hash;
    }
}
