using System.Text.Json;

namespace Orleans.MoE.Text.Tokenization;

/// <summary>Reads the parts of tokenizer.json with errors that name the file and component.</summary>
internal readonly struct TokenizerJson(string source)
{
    public string Source => source;

    public string Type(JsonElement component, string role) =>
        component.ValueKind == JsonValueKind.Object && component.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String
            ? t.GetString()!
            : throw Error($"{role} has no 'type'");

    public string String(JsonElement element, string name, string role) =>
        element.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Error($"{role}: '{name}' must be a string");

    public static string? OptionalString(JsonElement element, string name) =>
        element.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public static bool Flag(JsonElement element, string name, bool fallback) =>
        element.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : fallback;

    public static int Integer(JsonElement element, string name, int fallback) =>
        element.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : fallback;

    public IEnumerable<JsonElement> Array(JsonElement element, string name, string role) =>
        element.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array ? v.EnumerateArray() : throw Error($"{role}: '{name}' must be an array");

    /// <summary>A pattern object: {"String": "..."} (literal) or {"Regex": "..."}.</summary>
    public (string Text, bool IsRegex) Pattern(JsonElement element, string role)
    {
        if (element.TryGetProperty("pattern", out var pattern))
        {
            if (pattern.TryGetProperty("String", out var literal) && literal.ValueKind == JsonValueKind.String)
            {
                return (literal.GetString()!, false);
            }

            if (pattern.TryGetProperty("Regex", out var regex) && regex.ValueKind == JsonValueKind.String)
            {
                return (regex.GetString()!, true);
            }
        }

        throw Error($"{role}: 'pattern' must be {{\"String\": ...}} or {{\"Regex\": ...}}");
    }

    public TokenizerFormatException Unsupported(string role, string type) =>
        new($"{source}: {role} type '{type}' is not supported");

    public TokenizerFormatException Error(string message) => new($"{source}: {message}");
}
