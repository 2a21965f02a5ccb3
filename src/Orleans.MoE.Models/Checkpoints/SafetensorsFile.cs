using System.IO.MemoryMappedFiles;
using System.Text.Json;
using Orleans.MoE.Tensors;

namespace Orleans.MoE.Models.Checkpoints;

/// <summary>
/// One memory-mapped safetensors file: an 8-byte little-endian header length, a JSON header
/// mapping tensor names to dtype, shape and [begin, end) offsets into the data that follows.
/// The header is validated completely on open (so a corrupt file fails with a message naming the
/// file and tensor, never later with garbage); tensor bytes are touched only when read.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    /// <summary>Headers larger than this are refused (the format's own limit is 100 MB).</summary>
    private const long MaxHeaderBytes = 100L * 1024 * 1024;

    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _base;
    private readonly Dictionary<string, TensorEntry> _entries;
    private readonly long _dataStart;
    private int _disposed;

    private SafetensorsFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* basePointer, long dataStart, Dictionary<string, TensorEntry> entries, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        _map = map;
        _view = view;
        _base = basePointer;
        _dataStart = dataStart;
        _entries = entries;
        Metadata = metadata;
    }

    public string Path { get; }

    public IReadOnlyDictionary<string, string> Metadata { get; }

    public IEnumerable<TensorEntry> Tensors => _entries.Values;

    public static SafetensorsFile Open(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new CheckpointException($"{path}: file not found");
        }

        // A symbolic link (the Hugging Face cache links snapshots to blobs) has the length of its target.
        var length = info.LinkTarget is null ? info.Length : ((FileInfo?)info.ResolveLinkTarget(returnFinalTarget: true))?.Length ?? 0;
        if (length < 8)
        {
            throw new CheckpointException($"{path}: truncated: {length} bytes, too short for the 8-byte header length");
        }

        MemoryMappedFile map;
        try
        {
            map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, mapName: null, 0, MemoryMappedFileAccess.Read);
        }
        catch (IOException e)
        {
            throw new CheckpointException($"{path}: cannot map the file: {e.Message}", e);
        }

        MemoryMappedViewAccessor? view = null;
        try
        {
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* pointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            pointer += view.PointerOffset;
            var (entries, metadata, dataStart) = ParseHeader(path, new ReadOnlySpan<byte>(pointer, (int)Math.Min(length, int.MaxValue)), length);
            return new SafetensorsFile(path, map, view, pointer, dataStart, entries, metadata);
        }
        catch
        {
            view?.Dispose();
            map.Dispose();
            throw;
        }
    }

    public bool Contains(string name) => _entries.ContainsKey(name);

    public TensorEntry? Find(string name) => _entries.GetValueOrDefault(name);

    /// <summary>Address of the tensor's first byte in the mapping (valid while this file is open).</summary>
    public nint Address(TensorEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return (nint)(_base + _dataStart + entry.Offset);
    }

    /// <summary>
    /// A view of just this tensor's bytes, separate from the whole-file view: pages read through it count
    /// for it alone, and disposing it unmaps them, whatever else of the file stays mapped.
    /// </summary>
    public MappedRange MapRange(TensorEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ObjectDisposedException.ThrowIf(_disposed != 0 || _map is null, this);
        var view = _map.CreateViewAccessor(_dataStart + entry.Offset, entry.ByteLength, MemoryMappedFileAccess.Read);
        byte* pointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        return new MappedRange(view, (nint)(pointer + view.PointerOffset), entry.ByteLength);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _view?.SafeMemoryMappedViewHandle.ReleasePointer();
        _view?.Dispose();
        _map?.Dispose();
    }

    private static (Dictionary<string, TensorEntry> Entries, Dictionary<string, string> Metadata, long DataStart) ParseHeader(string path, ReadOnlySpan<byte> file, long fileLength)
    {
        var headerLength = BitConverter.ToUInt64(file[..8]);
        if (headerLength > (ulong)(fileLength - 8))
        {
            throw new CheckpointException($"{path}: header length {headerLength} runs past the end of the file ({fileLength} bytes): truncated or not a safetensors file");
        }

        if ((long)headerLength > MaxHeaderBytes)
        {
            throw new CheckpointException($"{path}: header of {headerLength} bytes exceeds the {MaxHeaderBytes}-byte limit");
        }

        var dataStart = 8 + (long)headerLength;
        var dataLength = fileLength - dataStart;
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(file.Slice(8, (int)headerLength).ToArray());
        }
        catch (JsonException e)
        {
            throw new CheckpointException($"{path}: header is not valid JSON: {e.Message}", e);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new CheckpointException($"{path}: header must be a JSON object");
            }

            var entries = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind == JsonValueKind.Object)
                    {
                        foreach (var m in property.Value.EnumerateObject())
                        {
                            metadata[m.Name] = m.Value.ToString();
                        }
                    }

                    continue;
                }

                entries[property.Name] = ParseEntry(path, property.Name, property.Value, dataLength);
            }

            CheckNoOverlap(path, entries.Values);
            return (entries, metadata, dataStart);
        }
    }

    private static TensorEntry ParseEntry(string path, string name, JsonElement value, long dataLength)
    {
        string Where() => $"{path}: tensor '{name}'";
        if (value.ValueKind != JsonValueKind.Object
            || !value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String
            || !value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array
            || !value.TryGetProperty("data_offsets", out var offsetsElement) || offsetsElement.ValueKind != JsonValueKind.Array)
        {
            throw new CheckpointException($"{Where()}: entry must have a string 'dtype', an array 'shape' and an array 'data_offsets'");
        }

        var dtypeName = dtypeElement.GetString()!;
        var dtype = DTypeExtensions.FromSafetensorsName(dtypeName)
            ?? throw new CheckpointException($"{Where()}: unsupported dtype '{dtypeName}' (supported: F32, BF16, F16, I64)");

        var shape = new long[shapeElement.GetArrayLength()];
        var i = 0;
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out var d) || d < 0)
            {
                throw new CheckpointException($"{Where()}: shape must hold non-negative integers, found {shapeElement}");
            }

            shape[i++] = d;
        }

        if (offsetsElement.GetArrayLength() != 2)
        {
            throw new CheckpointException($"{Where()}: data_offsets must be [begin, end], found {offsetsElement}");
        }

        var begin = ReadOffset(offsetsElement[0]);
        var end = ReadOffset(offsetsElement[1]);
        if (begin is null || end is null || begin > end)
        {
            throw new CheckpointException($"{Where()}: data_offsets {offsetsElement} are not a valid [begin, end] range");
        }

        if (end > dataLength)
        {
            throw new CheckpointException($"{Where()}: data_offsets {offsetsElement} lie outside the {dataLength} bytes of data (file truncated?)");
        }

        long expected;
        try
        {
            long elements = 1;
            foreach (var d in shape)
            {
                elements = checked(elements * d);
            }

            expected = checked(elements * dtype.Size());
        }
        catch (OverflowException e)
        {
            throw new CheckpointException($"{Where()}: shape {shapeElement} is too large", e);
        }

        var entry = new TensorEntry(name, dtype, shape, begin.Value, end.Value - begin.Value, path);
        if (expected != entry.ByteLength)
        {
            throw new CheckpointException($"{Where()}: {entry.ByteLength} bytes of data, but shape {entry.ShapeText} of {dtypeName} needs {expected}");
        }

        return entry;
    }

    private static long? ReadOffset(JsonElement element) =>
        element.ValueKind == JsonValueKind.Number && element.TryGetInt64(out var v) && v >= 0 ? v : null;

    private static void CheckNoOverlap(string path, IEnumerable<TensorEntry> entries)
    {
        TensorEntry? previous = null;
        foreach (var entry in entries.Where(e => e.ByteLength > 0).OrderBy(e => e.Offset))
        {
            if (previous is not null && entry.Offset < previous.Offset + previous.ByteLength)
            {
                throw new CheckpointException($"{path}: tensors '{previous.Name}' and '{entry.Name}' overlap in the data section");
            }

            previous = entry;
        }
    }
}

/// <summary>A mapped byte range of a file (one tensor); unmapped on dispose.</summary>
public sealed unsafe class MappedRange : IDisposable
{
    private readonly MemoryMappedViewAccessor _view;
    private int _disposed;

    internal MappedRange(MemoryMappedViewAccessor view, nint address, long length)
    {
        _view = view;
        Address = address;
        Length = length;
    }

    public nint Address { get; }

    public long Length { get; }

    /// <summary>Reads one byte of every page, so the range is resident before it is needed (and readable at all).</summary>
    public void Prefetch()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var bytes = (byte*)Address;
        var sum = 0;
        for (long i = 0; i < Length; i += 4096)
        {
            sum += bytes[i];
        }

        GC.KeepAlive(sum);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
    }
}
