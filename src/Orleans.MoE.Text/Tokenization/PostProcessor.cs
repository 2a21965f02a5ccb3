using System.Text.Json;

namespace Orleans.MoE.Text.Tokenization;

/// <summary>
/// The post-processors of tokenizer.json for a single sequence: TemplateProcessing (its "single"
/// template: the sequence, and the special tokens only when they are asked for), ByteLevel (offsets
/// only, so nothing here) and Sequence (each in turn).
/// </summary>
internal sealed class PostProcessor
{
    private readonly List<Piece[]> _templates;

    private PostProcessor(List<Piece[]> templates) => _templates = templates;

    /// <summary>How many special tokens the templates add (truncation leaves room for them).</summary>
    public int AddedTokenCount => _templates.Sum(t => t.Sum(p => p.Ids?.Length ?? 0));

    public static PostProcessor? Create(JsonElement element, TokenizerJson json)
    {
        if (element.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            return null;
        }

        var templates = new List<Piece[]>();
        Collect(element, json, templates);
        return new PostProcessor(templates);
    }

    private static void Collect(JsonElement element, TokenizerJson json, List<Piece[]> templates)
    {
        var type = json.Type(element, "post_processor");
        switch (type)
        {
            case "TemplateProcessing":
                templates.Add(Template(element, json));
                break;
            case "ByteLevel":
                break;
            case "Sequence":
                foreach (var step in json.Array(element, "processors", "post_processor Sequence"))
                {
                    Collect(step, json, templates);
                }

                break;
            default:
                throw json.Unsupported("post_processor", type);
        }
    }

    private static Piece[] Template(JsonElement element, TokenizerJson json)
    {
        var specials = element.TryGetProperty("special_tokens", out var s) && s.ValueKind == JsonValueKind.Object ? s : default;
        return json.Array(element, "single", "post_processor TemplateProcessing").Select(piece =>
        {
            if (piece.ValueKind == JsonValueKind.String)
            {
                // The string form: "$A", "$A:1", "[CLS]", "[CLS]:0".
                var id = piece.GetString()!.Split(':')[0];
                return id.StartsWith('$') ? SequencePiece(id[1..], json) : Special(id);
            }

            if (piece.TryGetProperty("Sequence", out var sequence))
            {
                return SequencePiece(json.String(sequence, "id", "post_processor Sequence piece"), json);
            }

            if (piece.TryGetProperty("SpecialToken", out var special))
            {
                return Special(json.String(special, "id", "post_processor SpecialToken"));
            }

            throw json.Error($"post_processor: template piece {piece.GetRawText()} is neither Sequence nor SpecialToken");
        }).ToArray();

        Piece Special(string name)
        {
            if (specials.ValueKind != JsonValueKind.Object || !specials.TryGetProperty(name, out var entry))
            {
                throw json.Error($"post_processor: special token '{name}' is not in special_tokens");
            }

            var ids = json.Array(entry, "ids", "post_processor special token").Select(i => i.GetInt32()).ToArray();
            var tokens = json.Array(entry, "tokens", "post_processor special token").Select(t => t.GetString()!).ToArray();
            return ids.Length == tokens.Length ? new Piece(ids, tokens) : throw json.Error($"post_processor: special token '{name}' has {ids.Length} ids but {tokens.Length} tokens");
        }
    }

    private static Piece SequencePiece(string id, TokenizerJson json) =>
        id is "" or "A" or "a" || int.TryParse(id, out _)
            ? new Piece(null, null)
            : throw json.Error($"post_processor: template sequence '{id}' in the single template (only A is defined for one sequence)");

    /// <summary>The templates applied to the sequence's ids and tokens.</summary>
    public void Apply(List<int> ids, List<string> tokens, bool addSpecialTokens)
    {
        foreach (var template in _templates)
        {
            var resultIds = new List<int>(ids.Count + 4);
            var resultTokens = new List<string>(ids.Count + 4);
            foreach (var piece in template)
            {
                if (piece.Ids is null)
                {
                    resultIds.AddRange(ids);
                    resultTokens.AddRange(tokens);
                }
                else if (addSpecialTokens)
                {
                    resultIds.AddRange(piece.Ids);
                    resultTokens.AddRange(piece.Tokens!);
                }
            }

            ids.Clear();
            ids.AddRange(resultIds);
            tokens.Clear();
            tokens.AddRange(resultTokens);
        }
    }

    /// <summary>One template piece: the sequence (Ids null) or a special token's ids and strings.</summary>
    private sealed record Piece(int[]? Ids, string[]? Tokens);
}
