using System.Text.Json;

namespace Orleans.MoE.Models.Tokenization;

/// <summary>Adds a model's special tokens around an encoded sequence (the reference's TemplateProcessing, single sequence).</summary>
internal sealed class PostProcessor(IReadOnlyList<(int[]? SpecialIds, string[]? SpecialTokens)> template)
{
    public static PostProcessor? Create(JsonElement element, TokenizerJson json)
    {
        if (element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        var type = json.Type(element, "post_processor");
        switch (type)
        {
            case "TemplateProcessing":
                var specials = element.TryGetProperty("special_tokens", out var s) && s.ValueKind == JsonValueKind.Object ? s : default;
                var pieces = json.Array(element, "single", "post_processor TemplateProcessing").Select<JsonElement, (int[]?, string[]?)>(piece =>
                {
                    if (piece.TryGetProperty("Sequence", out _))
                    {
                        return (null, null);
                    }

                    if (piece.TryGetProperty("SpecialToken", out var special))
                    {
                        var name = json.String(special, "id", "post_processor SpecialToken");
                        if (specials.ValueKind != JsonValueKind.Object || !specials.TryGetProperty(name, out var entry))
                        {
                            throw json.Error($"post_processor: special token '{name}' is not in special_tokens");
                        }

                        return (json.Array(entry, "ids", "special token").Select(i => i.GetInt32()).ToArray(),
                                json.Array(entry, "tokens", "special token").Select(t => t.GetString()!).ToArray());
                    }

                    throw json.Error($"post_processor: template piece {piece.GetRawText()} is neither Sequence nor SpecialToken");
                }).ToList();
                return new PostProcessor(pieces);
            case "ByteLevel":
                // Adjusts offsets only; ids are unchanged.
                return null;
            case "Sequence":
                var steps = json.Array(element, "processors", "post_processor Sequence").Select(p => Create(p, json)).OfType<PostProcessor>().ToList();
                return steps.Count switch
                {
                    0 => null,
                    1 => steps[0],
                    _ => throw json.Error("post_processor Sequence with more than one template is not supported"),
                };
            default:
                throw json.Unsupported("post_processor", type);
        }
    }

    /// <summary>The template applied to the sequence's ids and tokens.</summary>
    public void Apply(List<int> ids, List<string> tokens)
    {
        var resultIds = new List<int>();
        var resultTokens = new List<string>();
        foreach (var (specialIds, specialTokens) in template)
        {
            if (specialIds is null)
            {
                resultIds.AddRange(ids);
                resultTokens.AddRange(tokens);
            }
            else
            {
                resultIds.AddRange(specialIds);
                resultTokens.AddRange(specialTokens!);
            }
        }

        ids.Clear();
        ids.AddRange(resultIds);
        tokens.Clear();
        tokens.AddRange(resultTokens);
    }
}
