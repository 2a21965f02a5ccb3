using System.Text.Json;

namespace Orleans.MoE.Text.Tokenization;

/// <summary>tokenizer.json's "truncation" for a single sequence: keep max_length tokens (less the special tokens to be added), from the right or the left.</summary>
internal sealed record Truncation(int MaxLength, bool FromLeft, string Strategy)
{
    public static Truncation? Create(JsonElement element, TokenizerJson json)
    {
        if (element.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            return null;
        }

        var maxLength = TokenizerJson.Integer(element, "max_length", -1);
        var strategy = TokenizerJson.OptionalString(element, "strategy") ?? "LongestFirst";
        var direction = TokenizerJson.OptionalString(element, "direction") ?? "Right";
        if (maxLength < 0 || strategy is not ("LongestFirst" or "OnlyFirst" or "OnlySecond") || direction is not ("Left" or "Right"))
        {
            throw json.Error($"truncation {element.GetRawText()} is not understood");
        }

        return new Truncation(maxLength, direction == "Left", strategy);
    }

    /// <param name="reserved">Special tokens the post-processor will add.</param>
    public void Apply(List<int> ids, List<string> tokens, int reserved)
    {
        var maxLength = MaxLength - reserved;
        if (maxLength < 0)
        {
            throw new InvalidOperationException($"truncation max_length {MaxLength} is smaller than the {reserved} special tokens added");
        }

        if (maxLength > 0 && ids.Count <= maxLength)
        {
            return;
        }

        if (maxLength > 0 && Strategy == "OnlySecond")
        {
            throw new InvalidOperationException("truncation strategy OnlySecond needs a second sequence");
        }

        if (maxLength > 0 && Strategy == "OnlyFirst" && ids.Count <= ids.Count - maxLength)
        {
            throw new InvalidOperationException("sequence too short to respect the truncation max_length");
        }

        var remove = ids.Count - maxLength;
        var start = FromLeft ? 0 : maxLength;
        ids.RemoveRange(start, remove);
        tokens.RemoveRange(start, remove);
    }
}

/// <summary>tokenizer.json's "padding" for a single sequence: pad to a fixed length (or its own length), rounded up to a multiple.</summary>
internal sealed record Padding(int? FixedLength, int? Multiple, int PadId, string PadToken, bool OnLeft)
{
    public static Padding? Create(JsonElement element, TokenizerJson json)
    {
        if (element.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            return null;
        }

        int? fixedLength = null;
        if (element.TryGetProperty("strategy", out var strategy) && strategy.ValueKind == JsonValueKind.Object
            && strategy.TryGetProperty("Fixed", out var size) && size.ValueKind == JsonValueKind.Number)
        {
            fixedLength = size.GetInt32();
        }
        else if (strategy.ValueKind != JsonValueKind.String || strategy.GetString() != "BatchLongest")
        {
            throw json.Error($"padding strategy {strategy.GetRawText()} is not understood");
        }

        var direction = TokenizerJson.OptionalString(element, "direction") ?? "Right";
        int? multiple = element.TryGetProperty("pad_to_multiple_of", out var m) && m.ValueKind == JsonValueKind.Number ? m.GetInt32() : null;
        return direction is "Left" or "Right"
            ? new Padding(fixedLength, multiple, TokenizerJson.Integer(element, "pad_id", 0), TokenizerJson.OptionalString(element, "pad_token") ?? "[PAD]", direction == "Left")
            : throw json.Error($"padding direction '{direction}' is not understood");
    }

    public void Apply(List<int> ids, List<string> tokens)
    {
        var length = FixedLength ?? ids.Count;
        if (Multiple is > 0 && length % Multiple.Value > 0)
        {
            length += Multiple.Value - (length % Multiple.Value);
        }

        var missing = length - ids.Count;
        if (missing <= 0)
        {
            return;
        }

        var index = OnLeft ? 0 : ids.Count;
        ids.InsertRange(index, Enumerable.Repeat(PadId, missing));
        tokens.InsertRange(index, Enumerable.Repeat(PadToken, missing));
    }
}
