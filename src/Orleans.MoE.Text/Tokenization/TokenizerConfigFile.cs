using System.Text.Json;

namespace Orleans.MoE.Text.Tokenization;

/// <summary>
/// tokenizer_config.json, read for what this project uses of it: <c>add_bos_token</c>, the special tokens and
/// the chat template. Every error is a <see cref="TokenizerFormatException"/> naming the file and the field.
/// </summary>
internal sealed class TokenizerConfigFile
{
    private readonly JsonElement _root;

    private TokenizerConfigFile(string source, JsonElement root)
    {
        Source = source;
        _root = root;
    }

    /// <summary>Where the config came from (a path), for messages.</summary>
    public string Source { get; }

    /// <summary>Parses a JSON object; a clear error names <paramref name="source"/> when it is not one.</summary>
    public static TokenizerConfigFile Parse(string json, string source)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new TokenizerFormatException($"{source}: config must be a JSON object");
            }

            return new TokenizerConfigFile(source, document.RootElement.Clone());
        }
        catch (JsonException e)
        {
            throw new TokenizerFormatException($"{source}: not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>A true/false field; null when absent or null.</summary>
    public bool? FlagField(string name)
    {
        if (!_root.TryGetProperty(name, out var field) || field.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return field.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? field.GetBoolean()
            : throw Invalid(name, $"must be true or false, found {field.GetRawText()}");
    }

    /// <summary>A special token (bos_token, ...), written as text or as an object with a "content" string; null when absent.</summary>
    public string? SpecialToken(string name)
    {
        if (!_root.TryGetProperty(name, out var field) || field.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (field.ValueKind == JsonValueKind.String)
        {
            return field.GetString();
        }

        return field.ValueKind == JsonValueKind.Object && field.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String
            ? content.GetString()
            : throw Invalid(name, $"must be a string or an object with a \"content\" string, found {field.GetRawText()}");
    }

    /// <summary>
    /// The <c>chat_template</c> field: a string, or a list of <c>{"name", "template"}</c> of which the one named
    /// "default" is used; null when absent.
    /// </summary>
    public string? ChatTemplate()
    {
        if (!_root.TryGetProperty("chat_template", out var field) || field.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (field.ValueKind == JsonValueKind.String)
        {
            return field.GetString();
        }

        if (field.ValueKind != JsonValueKind.Array)
        {
            throw Invalid("chat_template", $"must be a string or a list of {{\"name\", \"template\"}}, found {field.GetRawText()}");
        }

        var names = new List<string>();
        foreach (var entry in field.EnumerateArray())
        {
            if (entry.ValueKind != JsonValueKind.Object
                || !entry.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String
                || !entry.TryGetProperty("template", out var template) || template.ValueKind != JsonValueKind.String)
            {
                throw Invalid("chat_template", $"entries must be {{\"name\": string, \"template\": string}}, found {entry.GetRawText()}");
            }

            if (name.GetString() == "default")
            {
                return template.GetString();
            }

            names.Add(name.GetString()!);
        }

        throw Invalid("chat_template", $"has templates {string.Join(", ", names.Select(n => $"'{n}'"))} but none named 'default'");
    }

    public TokenizerFormatException Invalid(string name, string problem) => new($"{Source}: field '{name}' {problem}");
}
