using System.Text.Json;

namespace Orleans.MoE.Api.OpenAi;

/// <summary>
/// A request body read field by field, each with its type checked and a clear 400 naming the field; a field
/// the endpoint does not know is refused as OpenAI does ("Unrecognized request argument supplied").
/// </summary>
internal sealed class JsonRequest
{
    private readonly JsonElement _root;

    private JsonRequest(JsonElement root) => _root = root;

    /// <summary>Parses <paramref name="body"/> as a JSON object whose fields are all in <paramref name="known"/>.</summary>
    public static JsonRequest Parse(ReadOnlyMemory<byte> body, IReadOnlySet<string> known)
    {
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 16 });
            root = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw ApiException.Invalid($"the request body is not valid JSON: {e.Message}");
        }

        if (root.ValueKind != JsonValueKind.Object)
        {
            throw ApiException.Invalid($"the request body must be a JSON object, not {Describe(root)}");
        }

        CheckText(root, "");

        foreach (var property in root.EnumerateObject())
        {
            if (!known.Contains(property.Name))
            {
                throw ApiException.Invalid($"Unrecognized request argument supplied: {property.Name}", property.Name);
            }
        }

        return new JsonRequest(root);
    }

    public JsonElement? Field(string name) =>
        _root.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    public string RequiredString(string name) =>
        String(name) ?? throw ApiException.Invalid($"'{name}' is required", name);

    public string? String(string name) => Field(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } v => v.GetString(),
        { } v => throw WrongType(name, v, "a string"),
    };

    public bool? Boolean(string name) => Field(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        { } v => throw WrongType(name, v, "a boolean"),
    };

    public int? Integer(string name, int min, int max)
    {
        if (Field(name) is not { } value)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var number))
        {
            throw WrongType(name, value, "an integer");
        }

        // Without an upper bound of its own (max_tokens: the server's cap is checked later, and named there), only the lower one is told.
        return number >= min && number <= max
            ? (int)number
            : throw ApiException.Invalid(max == int.MaxValue ? $"'{name}' must be at least {min}, not {number}" : $"'{name}' must be between {min} and {max}, not {number}", name);
    }

    public double? Number(string name, double min, double max, bool minExclusive = false)
    {
        if (Field(name) is not { } value)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Number)
        {
            throw WrongType(name, value, "a number");
        }

        var number = value.GetDouble();
        var above = minExclusive ? number > min : number >= min;
        return above && number <= max
            ? number
            : throw ApiException.Invalid($"'{name}' must be {(minExclusive ? "greater than" : "at least")} {min} and at most {max}, not {value.GetRawText()}", name);
    }

    /// <summary>A string or a list of strings (like <c>stop</c>), at most <paramref name="max"/>, none empty.</summary>
    public IReadOnlyList<string> StringOrList(string name, int max)
    {
        var list = Field(name) switch
        {
            null => [],
            { ValueKind: JsonValueKind.String } v => [v.GetString()!],
            { ValueKind: JsonValueKind.Array } v => v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : throw WrongType(name, v, "a string or a list of strings")).ToList(),
            { } v => throw WrongType(name, v, "a string or a list of strings"),
        };
        if (list.Count > max)
        {
            throw ApiException.Invalid($"'{name}' may have at most {max} entries, not {list.Count}", name);
        }

        return list.Any(s => s.Length == 0) ? throw ApiException.Invalid($"'{name}' entries must not be empty", name) : list;
    }

    /// <summary>Refuses a field that asks for something this server does not do (a value other than its neutral one).</summary>
    public void Unsupported(string name, Func<JsonElement, bool> isNeutral, string what)
    {
        if (Field(name) is { } value && !isNeutral(value))
        {
            throw ApiException.Invalid($"'{name}' is not supported by this server ({what})", name);
        }
    }

    /// <summary>
    /// Refuses a string or field name that is not text: bytes that are not UTF-8, or an escape of half a
    /// UTF-16 surrogate pair (<c>"\ud800"</c>). JSON parsing lets both through; decoding them later would fail.
    /// </summary>
    private static void CheckText(JsonElement element, string path)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    var name = Decode(() => property.Name, path.Length == 0 ? "a field name" : $"a field name in '{path}'", null);
                    CheckText(property.Value, path.Length == 0 ? name : $"{path}.{name}");
                }

                break;
            case JsonValueKind.Array:
                var index = 0;
                foreach (var item in element.EnumerateArray())
                {
                    CheckText(item, $"{path}[{index++}]");
                }

                break;
            case JsonValueKind.String:
                Decode(element.GetString, $"'{path}'", path);
                break;
        }
    }

    private static string Decode(Func<string?> decode, string what, string? param)
    {
        try
        {
            return decode() ?? "";
        }
        catch (InvalidOperationException)
        {
            throw ApiException.Invalid($"{what} is not valid text: it holds bytes that are not UTF-8 or an unpaired UTF-16 surrogate escape", param);
        }
    }

    public static ApiException WrongType(string name, JsonElement value, string expected) =>
        ApiException.Invalid($"'{name}' must be {expected}, not {Describe(value)}", name);

    private static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => $"the number {value.GetRawText()}",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };
}
