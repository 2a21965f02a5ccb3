using System.Text.Json;

namespace Orleans.MoE.Models.Configuration;

/// <summary>
/// A Hugging Face <c>config.json</c>: typed access to its fields with clear errors, and the settings
/// every architecture shares. Both styles are read: the older top-level <c>rope_theta</c>,
/// <c>rope_scaling</c> and <c>torch_dtype</c>, and the newer <c>rope_parameters</c> and <c>dtype</c>.
/// Architecture-specific fields are read by each architecture through <see cref="IntegerField"/>,
/// <see cref="SingleField"/>, <see cref="FlagField"/> and friends, with the defaults of its reference config class.
/// </summary>
public sealed class ModelConfig
{
    private readonly JsonElement _root;

    private ModelConfig(string source, JsonElement root)
    {
        Source = source;
        _root = root;
        ModelType = TextField("model_type") ?? throw Missing("model_type");
    }

    /// <summary>Where the config came from (a path), for messages.</summary>
    public string Source { get; }

    public string ModelType { get; }

    public int HiddenSize => RequiredInteger("hidden_size");
    public int NumLayers => RequiredInteger("num_hidden_layers");
    public int NumAttentionHeads => RequiredInteger("num_attention_heads");
    public int NumKeyValueHeads => IntegerField("num_key_value_heads") ?? NumAttentionHeads;
    public int VocabSize => RequiredInteger("vocab_size");
    public float RmsNormEps => SingleField("rms_norm_eps") ?? 1e-6f;
    public bool TieWordEmbeddings => FlagField("tie_word_embeddings") ?? false;
    public int MaxPositionEmbeddings => IntegerField("max_position_embeddings") ?? 4096;

    /// <summary>head_dim when given (and not null), else hidden_size / num_attention_heads.</summary>
    public int HeadDim => IntegerField("head_dim") ?? (HiddenSize / NumAttentionHeads);

    /// <summary>The stored dtype the config declares ("bfloat16", "float32", ...), from <c>dtype</c> or <c>torch_dtype</c>.</summary>
    public string? DType => TextField("dtype") ?? TextField("torch_dtype");

    public int? BosTokenId => IntegerField("bos_token_id");

    /// <summary>eos_token_id as one id or a list.</summary>
    public IReadOnlyList<int> EosTokenIds => IntList("eos_token_id") ?? [];

    /// <summary>
    /// The RoPE parameters: <c>rope_parameters</c> (newer) or <c>rope_scaling</c> plus top-level
    /// <c>rope_theta</c> (older). Unknown rope types are refused when the model is built.
    /// </summary>
    public RopeParameters Rope
    {
        get
        {
            var parameters = Object("rope_parameters") ?? Object("rope_scaling");
            double? nestedTheta = parameters is { } p && p.TryGetProperty("rope_theta", out var t) && t.ValueKind == JsonValueKind.Number ? t.GetDouble() : null;
            var theta = nestedTheta ?? NumberField("rope_theta") ?? 10000.0;
            string type = "default";
            var values = new Dictionary<string, double>(StringComparer.Ordinal);
            if (parameters is { } ps)
            {
                foreach (var item in ps.EnumerateObject())
                {
                    if ((item.Name is "rope_type" or "type") && item.Value.ValueKind == JsonValueKind.String)
                    {
                        type = item.Value.GetString()!;
                    }
                    else if (item.Value.ValueKind == JsonValueKind.Number)
                    {
                        values[item.Name] = item.Value.GetDouble();
                    }
                }
            }

            return new RopeParameters(type, theta, values);
        }
    }

    public static ModelConfig Load(string modelDirectory)
    {
        var path = File.Exists(modelDirectory) ? modelDirectory : Path.Combine(modelDirectory, "config.json");
        if (!File.Exists(path))
        {
            throw new ModelConfigException($"{path}: config.json not found");
        }

        return Parse(File.ReadAllText(path), path);
    }

    public static ModelConfig Parse(string json, string source)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new ModelConfigException($"{source}: config must be a JSON object");
            }

            return new ModelConfig(source, document.RootElement.Clone());
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

    private JsonElement? Object(string name) =>
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

/// <summary>RoPE settings: the type ("default", "linear", "yarn", ...), base theta, and the type's numeric parameters.</summary>
public sealed record RopeParameters(string Type, double Theta, IReadOnlyDictionary<string, double> Values)
{
    public double? Get(string name) => Values.TryGetValue(name, out var v) ? v : null;
}
