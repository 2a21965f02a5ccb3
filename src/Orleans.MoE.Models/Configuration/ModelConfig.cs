using System.Text.Json;

namespace Orleans.MoE.Models.Configuration;

/// <summary>
/// A Hugging Face <c>config.json</c>: typed access to its fields with clear errors, and the settings
/// every architecture shares. Both styles are read: the older top-level <c>rope_theta</c>,
/// <c>rope_scaling</c> and <c>torch_dtype</c>, and the newer <c>rope_parameters</c> and <c>dtype</c>.
/// Architecture-specific fields are read by each architecture through <see cref="ConfigFile.IntegerField"/>,
/// <see cref="ConfigFile.SingleField"/>, <see cref="ConfigFile.FlagField"/> and friends, with the defaults of its reference config class.
/// </summary>
public sealed class ModelConfig : ConfigFile
{
    private ModelConfig(string source, JsonElement root)
        : base(source, root)
    {
        ModelType = TextField("model_type") ?? throw Missing("model_type");
    }

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
                    else if (item.Value.ValueKind is JsonValueKind.True or JsonValueKind.False)
                    {
                        // Flags such as YaRN's "truncate": false, as 1 or 0.
                        values[item.Name] = item.Value.GetBoolean() ? 1 : 0;
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

    public static ModelConfig Parse(string json, string source) => new(source, ParseObject(json, source));
}

/// <summary>RoPE settings: the type ("default", "linear", "yarn", ...), base theta, and the type's numeric parameters (flags as 1 or 0).</summary>
public sealed record RopeParameters(string Type, double Theta, IReadOnlyDictionary<string, double> Values)
{
    public double? Get(string name) => Values.TryGetValue(name, out var v) ? v : null;
}
