using System.Text.Json;
using Orleans.MoE.Tensors;

namespace Orleans.MoE.Models.Checkpoints;

/// <summary>
/// The tensors of a model directory: one <c>model.safetensors</c>, or the shards named by
/// <c>model.safetensors.index.json</c>. Shards are opened (and their headers validated) on first use,
/// so reading one expert's tensors maps only the shards that hold them.
/// Also opens a single safetensors file (a reference file) directly.
/// </summary>
public sealed class Checkpoint : IDisposable
{
    public const string SingleFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly Dictionary<string, string> _tensorToFile;
    private readonly Dictionary<string, Lazy<SafetensorsFile>> _files;

    private Checkpoint(string location, Dictionary<string, string> tensorToFile, IEnumerable<string> files)
    {
        Location = location;
        _tensorToFile = tensorToFile;
        _files = files.Distinct().ToDictionary(f => f, f => new Lazy<SafetensorsFile>(() => SafetensorsFile.Open(f)));
    }

    /// <summary>The directory or file this checkpoint was opened from.</summary>
    public string Location { get; }

    public IEnumerable<string> TensorNames => _tensorToFile.Keys;

    /// <summary>Total bytes of tensor data in the shards opened so far, or all when <paramref name="openAll"/>.</summary>
    public long TensorBytes(bool openAll = true)
    {
        if (openAll)
        {
            foreach (var file in _files.Values)
            {
                _ = file.Value;
            }
        }

        return _files.Values.Where(f => f.IsValueCreated).SelectMany(f => f.Value.Tensors).Sum(t => t.ByteLength);
    }

    /// <summary>Opens a model directory (single file or sharded) or a single .safetensors file.</summary>
    public static Checkpoint Open(string path)
    {
        if (File.Exists(path))
        {
            return FromFile(path);
        }

        if (!Directory.Exists(path))
        {
            throw new CheckpointException($"{path}: no such model directory or safetensors file");
        }

        var index = System.IO.Path.Combine(path, IndexFileName);
        if (File.Exists(index))
        {
            return FromIndex(path, index);
        }

        var single = System.IO.Path.Combine(path, SingleFileName);
        if (File.Exists(single))
        {
            return FromFile(single);
        }

        throw new CheckpointException($"{path}: neither {SingleFileName} nor {IndexFileName} found");
    }

    private static Checkpoint FromFile(string file)
    {
        var opened = SafetensorsFile.Open(file);
        var checkpoint = new Checkpoint(file, opened.Tensors.ToDictionary(t => t.Name, _ => file), [file]);
        checkpoint._files[file] = new Lazy<SafetensorsFile>(opened);
        return checkpoint;
    }

    private static Checkpoint FromIndex(string directory, string index)
    {
        Dictionary<string, string> map;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(index));
            if (!document.RootElement.TryGetProperty("weight_map", out var weightMap) || weightMap.ValueKind != JsonValueKind.Object)
            {
                throw new CheckpointException($"{index}: no 'weight_map' object");
            }

            map = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in weightMap.EnumerateObject())
            {
                var shard = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString()! : null;
                if (string.IsNullOrEmpty(shard) || shard.Contains('/', StringComparison.Ordinal) || shard.Contains('\\', StringComparison.Ordinal) || shard.StartsWith('.'))
                {
                    throw new CheckpointException($"{index}: tensor '{entry.Name}' maps to an invalid shard name {entry.Value}");
                }

                var file = System.IO.Path.Combine(directory, shard);
                if (!File.Exists(file))
                {
                    throw new CheckpointException($"{index}: tensor '{entry.Name}' is in shard '{shard}', which does not exist");
                }

                map[entry.Name] = file;
            }
        }
        catch (JsonException e)
        {
            throw new CheckpointException($"{index}: not valid JSON: {e.Message}", e);
        }

        return new Checkpoint(directory, map, map.Values);
    }

    public bool Contains(string name) => _tensorToFile.ContainsKey(name);

    /// <summary>The entry for a tensor, opening its shard if needed; a clear error when absent.</summary>
    public TensorEntry Entry(string name)
    {
        var (file, entry) = Locate(name);
        _ = file;
        return entry;
    }

    /// <summary>A [rows, cols] weight matrix, kept in its stored dtype in the mapping.</summary>
    public WeightMatrix Matrix(string name, int rows, int cols)
    {
        var (file, entry) = Locate(name);
        ExpectShape(entry, rows, cols);
        ExpectFloatingPoint(entry);
        return new WeightMatrix(file.Address(entry), rows, cols, entry.DType);
    }

    /// <summary>
    /// A [rows, cols] weight matrix in its own mapping of just its bytes (see <see cref="SafetensorsFile.MapRange"/>):
    /// for a part of the model that comes and goes on its own, such as one expert. Dispose it when done.
    /// </summary>
    public MappedMatrix MapMatrix(string name, int rows, int cols)
    {
        var (file, entry) = Locate(name);
        ExpectShape(entry, rows, cols);
        ExpectFloatingPoint(entry);
        var range = file.MapRange(entry);
        return new MappedMatrix(new WeightMatrix(range.Address, rows, cols, entry.DType), range);
    }

    /// <summary>A 1-D tensor of the given length (norm weights, biases) converted to f32.</summary>
    public float[] Vector(string name, int length)
    {
        var (file, entry) = Locate(name);
        ExpectShape(entry, length);
        return ToSingles(file, entry);
    }

    /// <summary>Any floating-point tensor as f32, whatever its shape.</summary>
    public float[] ReadSingles(string name)
    {
        var (file, entry) = Locate(name);
        return ToSingles(file, entry);
    }

    /// <summary>An I64 tensor (token ids in reference files).</summary>
    public unsafe long[] ReadInt64s(string name)
    {
        var (file, entry) = Locate(name);
        if (entry.DType != DType.I64)
        {
            throw new CheckpointException($"{entry.File}: tensor '{name}' is {entry.DType}, expected I64");
        }

        return new ReadOnlySpan<long>((void*)file.Address(entry), checked((int)entry.ElementCount)).ToArray();
    }

    /// <summary>Reads every page of every shard once (warming the page cache), reporting bytes done of total.</summary>
    public unsafe void Prefetch(IProgress<(long Done, long Total)> progress)
    {
        ArgumentNullException.ThrowIfNull(progress);
        var files = _files.Values.Select(f => f.Value).ToArray();
        var total = files.SelectMany(f => f.Tensors).Sum(t => t.ByteLength);
        long done = 0;
        const int Page = 4096;
        var sink = 0;
        foreach (var file in files)
        {
            foreach (var tensor in file.Tensors.OrderBy(t => t.Offset))
            {
                var start = (byte*)file.Address(tensor);
                for (long offset = 0; offset < tensor.ByteLength; offset += Page)
                {
                    sink += start[offset];
                }

                done += tensor.ByteLength;
                progress.Report((done, total));
            }
        }

        GC.KeepAlive(sink);
    }

    public void Dispose()
    {
        foreach (var file in _files.Values.Where(f => f.IsValueCreated))
        {
            file.Value.Dispose();
        }
    }

    private static float[] ToSingles(SafetensorsFile file, TensorEntry entry)
    {
        ExpectFloatingPoint(entry);
        var values = new float[checked((int)entry.ElementCount)];
        DTypeConvert.ToSingle(file.Address(entry), entry.DType, values);
        return values;
    }

    private static void ExpectFloatingPoint(TensorEntry entry)
    {
        if (!entry.DType.IsFloatingPoint())
        {
            throw new CheckpointException($"{entry.File}: tensor '{entry.Name}' is {entry.DType}, expected a floating-point dtype");
        }
    }

    private static void ExpectShape(TensorEntry entry, params long[] shape)
    {
        if (!entry.Shape.AsSpan().SequenceEqual(shape))
        {
            throw new CheckpointException($"{entry.File}: tensor '{entry.Name}' has shape {entry.ShapeText}, the config implies [{string.Join(", ", shape)}]");
        }
    }

    private (SafetensorsFile File, TensorEntry Entry) Locate(string name)
    {
        if (!_tensorToFile.TryGetValue(name, out var path))
        {
            throw new CheckpointException($"{Location}: tensor '{name}' not found in the checkpoint");
        }

        var file = _files[path].Value;
        var entry = file.Find(name)
            ?? throw new CheckpointException($"{path}: tensor '{name}' is listed in {IndexFileName} but missing from the shard");
        return (file, entry);
    }
}

/// <summary>A weight matrix over its own mapping (<see cref="Checkpoint.MapMatrix"/>); unmapped on dispose.</summary>
public sealed class MappedMatrix(WeightMatrix matrix, MappedRange range) : IDisposable
{
    public WeightMatrix Matrix { get; } = matrix;

    /// <summary>Brings the matrix's pages into memory now.</summary>
    public void Prefetch() => range.Prefetch();

    public void Dispose() => range.Dispose();
}
