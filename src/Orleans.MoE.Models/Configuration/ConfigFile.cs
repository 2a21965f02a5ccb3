using System.Text.Json;

namespace Orleans.MoE.Models.Configuration;

/// <summary>
/// A JSON config file (config.json, generation_config.json) with typed access to its fields; every
/// error names the file and the field.
/// </summary>
public class ConfigFile
{
    private protected readonly JsonElement _root;

    private protected ConfigFile(string source, JsonElement root)
    {
        Source = source;
        _root = root;
    }

    /// <summary>Where the config came from (a path), for messages.</summary>
    public string Source { get; }

    /// <summary>Parses a JSON object; a clear error names <paramref name="source"/> when it is not one.</summary>
    public static ConfigFile ParseFile(string json, string source) => new(source, ParseObject(json, source));

    private protected static JsonElement ParseObject(string json, string source)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new ModelConfigException($"{source}: config must be a JSON object");
            }

            return document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new ModelConfigException($"{source}: not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>Whether the field is present, even as null (some fields default to a value when absent but mean "none" when null).</summary>
    public bool IsPresent(string name) => _root.TryGetProperty(name, out _);

    public bool Has(string name) => _root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;

    public int RequiredInteger(string name) => IntegerField(name) ?? throw Missing(name);

    public int? IntegerField(string name) => Value(name, JsonValueKind.Number, e => e.TryGetInt32(out var v) ? v : throw Invalid(name, e, "an integer"));

    public float? SingleField(string name) => (float?)NumberField(name);

    public double? NumberField(string name) => Value(name, JsonValueKind.Number, e => e.GetDouble());

    public bool? FlagField(string name) => Value(name, JsonValueKind.True, e => e.GetBoolean());

    public string? TextField(string name) => Value(name, JsonValueKind.String, e => e.GetString()!);

    public IReadOnlyList<int>? IntList(string name)
    {
        if (!_root.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (e.ValueKind == JsonValueKind.Number)
        {
            return [IntegerField(name)!.Value];
        }

        if (e.ValueKind != JsonValueKind.Array)
        {
            throw Invalid(name, e, "an integer or a list of integers");
        }

        return e.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.Number && x.TryGetInt32(out var v) ? v : throw Invalid(name, e, "a list of integers")).ToArray();
    }

    public IReadOnlyList<string>? StringList(string name)
    {
        if (!_root.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return e.ValueKind == JsonValueKind.Array
            ? e.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString()! : throw Invalid(name, e, "a list of strings")).ToArray()
            : throw Invalid(name, e, "a list of strings");
    }

    public ModelConfigException Missing(string name) =>
        new($"{Source}: required field '{name}' is missing (model_type '{(_root.TryGetProperty("model_type", out var t) ? t.ToString() : "?")}')");

    public ModelConfigException Invalid(string name, string problem) => new($"{Source}: field '{name}' {problem}");

    private ModelConfigException Invalid(string name, JsonElement value, string expected) =>
        new($"{Source}: field '{name}' must be {expected}, found {value.GetRawText()}");

    private protected JsonElement? Object(string name) =>
        _root.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.Object ? e : null;

    private T? Value<T>(string name, JsonValueKind kind, Func<JsonElement, T> read)
        where T : struct
    {
        if (!_root.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        var matches = kind == JsonValueKind.True ? e.ValueKind is JsonValueKind.True or JsonValueKind.False : e.ValueKind == kind;
        return matches ? read(e) : throw Invalid(name, e, kind == JsonValueKind.True ? "true or false" : $"a {kind.ToString().ToLowerInvariant()}");
    }

    private string? Value(string name, JsonValueKind kind, Func<JsonElement, string> read)
    {
        if (!_root.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return e.ValueKind == kind ? read(e) : throw Invalid(name, e, "a string");
    }
}
