using System.Text.Json;
using Orleans.MoE.Text.Chat;

namespace Orleans.MoE.Api.OpenAi;

/// <summary>What is generated and how, common to both endpoints (OpenAI's names in the comments).</summary>
internal sealed record GenerationParameters(
    int? MaxTokens,              // max_tokens / max_completion_tokens; null: the endpoint's default
    float Temperature,           // temperature, 0 to 2, default 1; 0 is greedy
    float TopP,                  // top_p, (0, 1]
    int N,                       // n: choices per prompt
    int? Seed,                   // seed: reproducible sampling (choice i uses seed + i)
    IReadOnlyList<string> Stop,  // stop: up to 4 strings that end the text (not included)
    bool Stream,                 // stream: server-sent events
    bool IncludeUsage);          // stream_options.include_usage: a last chunk with usage

/// <summary>A prompt as text, or as token ids (the completions endpoint takes both).</summary>
internal abstract record PromptInput
{
    public sealed record Text(string Value) : PromptInput;

    public sealed record Tokens(int[] Ids) : PromptInput;
}

/// <summary>A <c>/v1/completions</c> request: one or more prompts.</summary>
internal sealed record CompletionRequest(string Model, IReadOnlyList<PromptInput> Prompts, GenerationParameters Parameters)
{
    private static readonly HashSet<string> s_fields =
    [
        .. ParameterReader.Fields, "prompt", "echo", "suffix", "best_of",
    ];

    public static CompletionRequest Parse(ReadOnlyMemory<byte> body, int maxChoices)
    {
        var json = JsonRequest.Parse(body, s_fields);
        json.Unsupported("echo", v => v.ValueKind == JsonValueKind.False, "echo must be false");
        json.Unsupported("suffix", v => v.ValueKind == JsonValueKind.String && v.GetString()!.Length == 0, "suffix must be empty");
        json.Unsupported("logprobs", v => v.ValueKind == JsonValueKind.Number && v.GetDouble() == 0, "logprobs must be null or 0");
        var parameters = ParameterReader.Read(json, maxChoices, "max_tokens");
        json.Unsupported("best_of", v => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var b) && b == parameters.N, "best_of must equal n");
        return new CompletionRequest(json.RequiredString("model"), ReadPrompts(json), parameters);
    }

    /// <summary>prompt: a string, a list of strings, a list of token ids, or a list of such lists.</summary>
    private static List<PromptInput> ReadPrompts(JsonRequest json)
    {
        var prompt = json.Field("prompt") ?? throw ApiException.Invalid("'prompt' is required", "prompt");
        var prompts = prompt.ValueKind switch
        {
            JsonValueKind.String => [new PromptInput.Text(prompt.GetString()!)],
            JsonValueKind.Array when prompt.GetArrayLength() > 0 && prompt.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number) => [Tokens(prompt)],
            JsonValueKind.Array => prompt.EnumerateArray().Select(PromptInput (e) => e.ValueKind switch
            {
                JsonValueKind.String => new PromptInput.Text(e.GetString()!),
                JsonValueKind.Array => Tokens(e),
                _ => throw JsonRequest.WrongType("prompt", prompt, "a string, a list of strings or a list of token ids"),
            }).ToList(),
            _ => throw JsonRequest.WrongType("prompt", prompt, "a string, a list of strings or a list of token ids"),
        };
        if (prompts.Count == 0)
        {
            throw ApiException.Invalid("'prompt' must not be an empty list", "prompt");
        }

        if (prompts.Count > 16)
        {
            throw ApiException.Invalid($"'prompt' may hold at most 16 prompts, not {prompts.Count}", "prompt");
        }

        return prompts.Any(p => p is PromptInput.Text { Value.Length: 0 } or PromptInput.Tokens { Ids.Length: 0 })
            ? throw ApiException.Invalid("'prompt' must not be empty", "prompt")
            : prompts;
    }

    private static PromptInput.Tokens Tokens(JsonElement list) =>
        new(list.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var id) && id >= 0
            ? id
            : throw ApiException.Invalid($"'prompt' token ids must be non-negative integers, not {e.GetRawText()}", "prompt")).ToArray());
}

/// <summary>A <c>/v1/chat/completions</c> request: a conversation to continue.</summary>
internal sealed record ChatCompletionRequest(string Model, IReadOnlyList<ChatMessage> Messages, GenerationParameters Parameters)
{
    private static readonly HashSet<string> s_fields =
    [
        .. ParameterReader.Fields, "messages", "max_completion_tokens", "top_logprobs", "response_format", "tools", "tool_choice",
        "parallel_tool_calls", "metadata", "store", "service_tier",
    ];

    private static readonly HashSet<string> s_roles = ["system", "developer", "user", "assistant"];

    public static ChatCompletionRequest Parse(ReadOnlyMemory<byte> body, int maxChoices)
    {
        var json = JsonRequest.Parse(body, s_fields);
        json.Unsupported("logprobs", v => v.ValueKind == JsonValueKind.False, "logprobs must be false");
        json.Unsupported("top_logprobs", v => v.ValueKind == JsonValueKind.Number && v.GetDouble() == 0, "top_logprobs must be 0");
        json.Unsupported("response_format", v => v.ValueKind == JsonValueKind.Object && v.TryGetProperty("type", out var t) && t.ValueEquals("text"), "only {\"type\": \"text\"}");
        json.Unsupported("tools", v => v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 0, "tool calls are not supported");
        json.Unsupported("tool_choice", v => v.ValueKind == JsonValueKind.String && (v.ValueEquals("none") || v.ValueEquals("auto")), "tool calls are not supported");
        json.Unsupported("store", v => v.ValueKind == JsonValueKind.False, "completions are not stored");
        if (json.Field("max_tokens") is not null && json.Field("max_completion_tokens") is not null)
        {
            throw ApiException.Invalid("give either 'max_tokens' or 'max_completion_tokens', not both", "max_completion_tokens");
        }

        var parameters = ParameterReader.Read(json, maxChoices, json.Field("max_completion_tokens") is null ? "max_tokens" : "max_completion_tokens");
        _ = json.Boolean("parallel_tool_calls");
        _ = json.String("service_tier");
        return new ChatCompletionRequest(json.RequiredString("model"), ReadMessages(json), parameters);
    }

    private static List<ChatMessage> ReadMessages(JsonRequest json)
    {
        var messages = json.Field("messages") ?? throw ApiException.Invalid("'messages' is required", "messages");
        if (messages.ValueKind != JsonValueKind.Array)
        {
            throw JsonRequest.WrongType("messages", messages, "a list of messages");
        }

        var list = messages.EnumerateArray().Select((m, i) => Message(m, $"messages[{i}]")).ToList();
        return list.Count == 0 ? throw ApiException.Invalid("'messages' must not be empty", "messages") : list;
    }

    /// <summary>{role, content, name?}; content is text or a list of text parts. "developer" reads as "system" (what templates know).</summary>
    private static ChatMessage Message(JsonElement message, string path)
    {
        if (message.ValueKind != JsonValueKind.Object)
        {
            throw JsonRequest.WrongType(path, message, "an object with 'role' and 'content'");
        }

        foreach (var property in message.EnumerateObject().Where(p => p.Name is not ("role" or "content" or "name")))
        {
            throw ApiException.Invalid($"'{path}.{property.Name}' is not supported by this server", $"{path}.{property.Name}");
        }

        var role = message.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString()! : throw ApiException.Invalid($"'{path}.role' must be a string", $"{path}.role");
        if (!s_roles.Contains(role))
        {
            throw ApiException.Invalid($"'{path}.role' must be one of system, developer, user, assistant, not '{role}'", $"{path}.role");
        }

        var content = message.TryGetProperty("content", out var c) ? c : default;
        var text = content.ValueKind switch
        {
            JsonValueKind.String => content.GetString()!,
            JsonValueKind.Array => string.Concat(content.EnumerateArray().Select(part => TextPart(part, $"{path}.content"))),
            _ => throw ApiException.Invalid($"'{path}.content' must be a string or a list of text parts", $"{path}.content"),
        };
        var name = message.TryGetProperty("name", out var n) ? n.ValueKind == JsonValueKind.String ? n.GetString() : throw ApiException.Invalid($"'{path}.name' must be a string", $"{path}.name") : null;
        return new ChatMessage(role == "developer" ? "system" : role, text, name);
    }

    private static string TextPart(JsonElement part, string path) =>
        part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var type) && type.ValueEquals("text")
            && part.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String
            ? text.GetString()!
            : throw ApiException.Invalid($"'{path}' parts must be {{\"type\": \"text\", \"text\": ...}} (this model reads text only)", path);
}

/// <summary>The fields both endpoints share.</summary>
internal static class ParameterReader
{
    public static readonly string[] Fields =
    [
        "model", "max_tokens", "temperature", "top_p", "n", "stream", "stream_options", "stop", "seed", "user",
        "frequency_penalty", "presence_penalty", "logit_bias", "logprobs",
    ];

    public static GenerationParameters Read(JsonRequest json, int maxChoices, string maxTokensField)
    {
        json.Unsupported("frequency_penalty", v => v.ValueKind == JsonValueKind.Number && v.GetDouble() == 0, "penalties must be 0");
        json.Unsupported("presence_penalty", v => v.ValueKind == JsonValueKind.Number && v.GetDouble() == 0, "penalties must be 0");
        json.Unsupported("logit_bias", v => v.ValueKind == JsonValueKind.Object && !v.EnumerateObject().Any(), "logit_bias must be empty");
        _ = json.String("user");
        var stream = json.Boolean("stream") ?? false;
        var includeUsage = false;
        if (json.Field("stream_options") is { } options)
        {
            if (!stream)
            {
                throw ApiException.Invalid("'stream_options' is only allowed with 'stream': true", "stream_options");
            }

            if (options.ValueKind != JsonValueKind.Object || options.EnumerateObject().Any(p => p.Name != "include_usage"))
            {
                throw ApiException.Invalid("'stream_options' may only hold 'include_usage'", "stream_options");
            }

            includeUsage = options.TryGetProperty("include_usage", out var usage) && usage.ValueKind == JsonValueKind.True;
        }

        return new GenerationParameters(
            json.Integer(maxTokensField, 1, int.MaxValue),
            (float)(json.Number("temperature", 0, 2) ?? 1),
            (float)(json.Number("top_p", 0, 1, minExclusive: true) ?? 1),
            json.Integer("n", 1, maxChoices) ?? 1,
            json.Integer("seed", int.MinValue, int.MaxValue),
            json.StringOrList("stop", 4),
            stream,
            includeUsage);
    }
}
