using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Orleans.MoE.Api.OpenAi;

/// <summary>Token counts of a request, as OpenAI reports them.</summary>
internal readonly record struct Usage(int PromptTokens, int CompletionTokens)
{
    public void Write(Utf8JsonWriter json)
    {
        json.WriteStartObject("usage");
        json.WriteNumber("prompt_tokens", PromptTokens);
        json.WriteNumber("completion_tokens", CompletionTokens);
        json.WriteNumber("total_tokens", PromptTokens + CompletionTokens);
        json.WriteEndObject();
    }
}

/// <summary>What every object of one response carries: its id, creation time and model.</summary>
internal sealed record ResponseIdentity(string Id, long Created, string Model)
{
    /// <summary>Opens the response object (or chunk) of type <paramref name="obj"/> with these fields; the caller closes it.</summary>
    public void WriteStart(Utf8JsonWriter json, string obj)
    {
        json.WriteStartObject();
        json.WriteString("id", Id);
        json.WriteString("object", obj);
        json.WriteNumber("created", Created);
        json.WriteString("model", Model);
    }
}

/// <summary>
/// The two endpoints' response shapes: <c>text_completion</c> choices carry <c>text</c>, chat choices a
/// <c>message</c> (whole) or a <c>delta</c> (streamed, the first one with the assistant role).
/// </summary>
internal sealed class ResponseShape
{
    public static readonly ResponseShape Text = new("cmpl-", "text_completion", "text_completion", chat: false);
    public static readonly ResponseShape Chat = new("chatcmpl-", "chat.completion", "chat.completion.chunk", chat: true);

    private readonly bool _chat;

    private ResponseShape(string idPrefix, string obj, string chunkObject, bool chat)
    {
        IdPrefix = idPrefix;
        Object = obj;
        ChunkObject = chunkObject;
        _chat = chat;
    }

    public string IdPrefix { get; }

    public string Object { get; }

    public string ChunkObject { get; }

    public void WriteChoice(Utf8JsonWriter json, int index, string text, string? finish, bool streamed, bool first)
    {
        json.WriteStartObject();
        json.WriteNumber("index", index);
        if (!_chat)
        {
            json.WriteString("text", text);
        }
        else
        {
            json.WriteStartObject(streamed ? "delta" : "message");
            if (!streamed || first)
            {
                json.WriteString("role", "assistant");
            }

            if (!streamed || text.Length > 0 || first)
            {
                json.WriteString("content", text);
            }

            json.WriteEndObject();
        }

        json.WriteNull("logprobs");
        if (finish is null)
        {
            json.WriteNull("finish_reason");
        }
        else
        {
            json.WriteString("finish_reason", finish);
        }

        json.WriteEndObject();
    }
}

/// <summary>Writes JSON bodies and server-sent events.</summary>
internal static class ResponseWriter
{
    public static async Task WriteJsonAsync(HttpResponse response, int status, Action<Utf8JsonWriter> body, CancellationToken cancellationToken)
    {
        response.StatusCode = status;
        response.ContentType = "application/json";
        await response.Body.WriteAsync(Serialize(body), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One event: <c>data: {json}</c> and a blank line, flushed at once.</summary>
    public static async Task WriteEventAsync(HttpResponse response, Action<Utf8JsonWriter> body, CancellationToken cancellationToken)
    {
        var buffer = new ArrayBufferWriter<byte>();
        buffer.Write("data: "u8);
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            body(json);
        }

        buffer.Write("\n\n"u8);
        await response.Body.WriteAsync(buffer.WrittenMemory, cancellationToken).ConfigureAwait(false);
        await response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public static async Task WriteDoneAsync(HttpResponse response, CancellationToken cancellationToken)
    {
        await response.Body.WriteAsync("data: [DONE]\n\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
        await response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public static void StartEvents(HttpResponse response)
    {
        response.StatusCode = 200;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
    }

    public static void WriteError(Utf8JsonWriter json, ApiException error)
    {
        json.WriteStartObject();
        json.WriteStartObject("error");
        json.WriteString("message", error.Message);
        json.WriteString("type", error.Type);
        WriteNullable(json, "param", error.Param);
        WriteNullable(json, "code", error.Code);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    /// <summary>An error as the response: status, Retry-After when given, OpenAI's error object.</summary>
    public static Task WriteErrorAsync(HttpResponse response, ApiException error, CancellationToken cancellationToken)
    {
        if (error.RetryAfterSeconds is { } seconds)
        {
            response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return WriteJsonAsync(response, error.Status, json => WriteError(json, error), cancellationToken);
    }

    public static ReadOnlyMemory<byte> Serialize(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            body(json);
        }

        return buffer.WrittenMemory;
    }

    private static void WriteNullable(Utf8JsonWriter json, string name, string? value)
    {
        if (value is null)
        {
            json.WriteNull(name);
        }
        else
        {
            json.WriteString(name, value);
        }
    }
}
