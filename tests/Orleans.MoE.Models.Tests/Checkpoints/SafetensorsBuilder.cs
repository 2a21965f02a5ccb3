using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;

namespace Orleans.MoE.Models.Tests.Checkpoints;

/// <summary>
/// Builds small, valid safetensors files byte by byte (8-byte little-endian header length, JSON header,
/// data), and lets a test corrupt them: edit the header JSON before it is written, replace the header
/// text, or change the bytes of the finished file.
/// </summary>
internal sealed class SafetensorsBuilder
{
    private readonly List<(string Name, string DType, long[] Shape, byte[] Data)> _tensors = [];
    private readonly List<Action<JsonObject>> _headerEdits = [];
    private Dictionary<string, string>? _metadata;

    /// <summary>A tensor with raw bytes and any dtype name (also ones the reader does not know).</summary>
    public SafetensorsBuilder Add(string name, string dtype, long[] shape, byte[] data)
    {
        _tensors.Add((name, dtype, shape, data));
        return this;
    }

    public SafetensorsBuilder F32(string name, long[] shape, params float[] values) => Add(name, "F32", shape, Bytes(values));

    /// <summary>An F32 [rows, cols] tensor holding 0, 1, 2, ... .</summary>
    public SafetensorsBuilder Counting(string name, int rows, int cols) =>
        F32(name, [rows, cols], Enumerable.Range(0, rows * cols).Select(i => (float)i).ToArray());

    public SafetensorsBuilder Metadata(string key, string value)
    {
        (_metadata ??= [])[key] = value;
        return this;
    }

    /// <summary>Changes the header (a JSON object of tensor entries) after the offsets are laid out.</summary>
    public SafetensorsBuilder EditHeader(Action<JsonObject> edit)
    {
        _headerEdits.Add(edit);
        return this;
    }

    /// <summary>Sets one field of one tensor's entry, e.g. ("w", "data_offsets", [8, 0]).</summary>
    public SafetensorsBuilder SetField(string tensor, string field, JsonNode? value) =>
        EditHeader(header => header[tensor]![field] = value);

    public string HeaderJson()
    {
        var header = new JsonObject();
        if (_metadata is not null)
        {
            var metadata = new JsonObject();
            foreach (var (key, value) in _metadata)
            {
                metadata[key] = value;
            }

            header["__metadata__"] = metadata;
        }

        long offset = 0;
        foreach (var (name, dtype, shape, data) in _tensors)
        {
            header[name] = new JsonObject
            {
                ["dtype"] = dtype,
                ["shape"] = new JsonArray(shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + data.Length),
            };
            offset += data.Length;
        }

        foreach (var edit in _headerEdits)
        {
            edit(header);
        }

        return header.ToJsonString();
    }

    /// <summary>The file's bytes, with <paramref name="headerText"/> in place of the built header when given.</summary>
    public byte[] Build(string? headerText = null)
    {
        var json = Encoding.UTF8.GetBytes(headerText ?? HeaderJson());
        var padded = (json.Length + 7) / 8 * 8;
        var bytes = new List<byte>();
        bytes.AddRange(BitConverter.GetBytes((ulong)padded));
        bytes.AddRange(json);
        bytes.AddRange(Enumerable.Repeat((byte)' ', padded - json.Length));
        foreach (var tensor in _tensors)
        {
            bytes.AddRange(tensor.Data);
        }

        return bytes.ToArray();
    }

    /// <summary>Writes the file, passing its bytes through <paramref name="corrupt"/> first; returns the path.</summary>
    public string WriteTo(string path, Func<byte[], byte[]>? corrupt = null)
    {
        var bytes = Build();
        File.WriteAllBytes(path, corrupt is null ? bytes : corrupt(bytes));
        return path;
    }

    public static byte[] Bytes<T>(params T[] values)
        where T : unmanaged => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    /// <summary>The file with its 8-byte header length replaced.</summary>
    public static byte[] WithHeaderLength(byte[] file, ulong length)
    {
        var copy = file.ToArray();
        BitConverter.GetBytes(length).CopyTo(copy, 0);
        return copy;
    }
}
