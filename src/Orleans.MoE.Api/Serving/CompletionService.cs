using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.MoE.Api.OpenAi;
using Orleans.MoE.Api.Operations;
using Orleans.MoE.Grains.Generation;

namespace Orleans.MoE.Api.Serving;

/// <summary>When a request arrived (a <see cref="Stopwatch"/> timestamp): latencies are measured from there, as its client sees them.</summary>
internal static class RequestArrival
{
    private static readonly object s_key = new();

    public static void Set(HttpContext context, long timestamp) => context.Items[s_key] = timestamp;

    public static long Get(HttpContext context) => context.Items[s_key] is long timestamp ? timestamp : Stopwatch.GetTimestamp();
}

/// <summary>
/// Answers <c>/v1/completions</c> and <c>/v1/chat/completions</c>: checks the request against the model
/// and the limits, generates every choice through the mesh (each a <see cref="MeshClient"/> stream, which
/// survives the loss of the silo running it), and writes the answer whole or as server-sent events.
/// </summary>
internal sealed class CompletionService(ModelCatalog catalog, IGrainFactory grains, ApiMetrics metrics, IOptions<ApiOptions> options, ILogger<MeshClient> meshLogger)
{
    /// <summary>OpenAI's default <c>max_tokens</c> for the legacy completions endpoint.</summary>
    private const int COMPLETIONS_DEFAULT_MAX_TOKENS = 16;

    private readonly ApiOptions _options = options.Value;

    public async Task CompletionsAsync(HttpContext context, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        var request = CompletionRequest.Parse(body, _options.MaxChoices);
        var model = await catalog.GetAsync(request.Model).ConfigureAwait(false);
        var prompts = request.Prompts.Select(p => p switch
        {
            PromptInput.Text text => model.Encoder.Encode(text.Value).ToArray(),
            PromptInput.Tokens tokens => tokens.Ids,
            _ => throw new UnreachableException(),
        }).ToList();
        await GenerateAsync(context, ResponseShape.Text, model, prompts, request.Parameters, COMPLETIONS_DEFAULT_MAX_TOKENS, cancellationToken).ConfigureAwait(false);
    }

    public async Task ChatCompletionsAsync(HttpContext context, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        var request = ChatCompletionRequest.Parse(body, _options.MaxChoices);
        var model = await catalog.GetAsync(request.Model).ConfigureAwait(false);
        var prompt = model.EncodeChat(request.Messages);
        await GenerateAsync(context, ResponseShape.Chat, model, [prompt], request.Parameters, defaultMaxTokens: null, cancellationToken).ConfigureAwait(false);
    }

    private async Task GenerateAsync(
        HttpContext context, ResponseShape shape, ServedModel model, List<int[]> prompts, GenerationParameters parameters, int? defaultMaxTokens, CancellationToken cancellationToken)
    {
        var started = RequestArrival.Get(context);
        var requests = new List<GenerationRequest>();
        foreach (var prompt in prompts)
        {
            var maxTokens = CheckLengths(model, prompt, parameters.MaxTokens, defaultMaxTokens, shape == ResponseShape.Chat ? "messages" : "prompt");
            for (var i = 0; i < parameters.N; i++)
            {
                requests.Add(new GenerationRequest(
                    model.Name, prompt, maxTokens, model.Info.StopTokens, parameters.Temperature, 0, parameters.TopP,
                    parameters.Seed is { } seed ? unchecked(seed + i) : null, RequestId: context.TraceIdentifier));
            }
        }

        var identity = new ResponseIdentity(shape.IdPrefix + Guid.NewGuid().ToString("N"), DateTimeOffset.UtcNow.ToUnixTimeSeconds(), model.Name);
        var promptTokens = prompts.Sum(p => p.Length);
        using var generation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var deltas = Produce(requests, model, parameters.Stop, started, generation);
        try
        {
            if (parameters.Stream)
            {
                await StreamAsync(context.Response, shape, identity, deltas, requests.Count, promptTokens, parameters.IncludeUsage, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await AnswerAsync(context.Response, shape, identity, deltas, requests.Count, promptTokens, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            await generation.CancelAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The request's <c>max_tokens</c>: this server's limits (prompt tokens, <c>max_tokens</c>), then the rules
    /// the mesh itself applies (<see cref="GenerationRules"/>), answered as 400s naming the parameter.
    /// </summary>
    private int CheckLengths(ServedModel model, int[] prompt, int? requested, int? defaultMaxTokens, string promptParam)
    {
        var info = model.Info;
        if (_options.MaxPromptTokens > 0 && prompt.Length > _options.MaxPromptTokens)
        {
            throw ApiException.Invalid($"the prompt has {prompt.Length} tokens; this server accepts at most {_options.MaxPromptTokens}", promptParam, "context_length_exceeded");
        }

        if (requested > _options.MaxTokens)
        {
            throw ApiException.Invalid($"max_tokens is {requested}; this server allows at most {_options.MaxTokens}", "max_tokens");
        }

        var maxTokens = requested ?? defaultMaxTokens ?? Math.Min(info.ContextLength - prompt.Length, _options.MaxTokens);
        try
        {
            GenerationRules.Check(prompt, maxTokens, info.VocabSize, info.ContextLength);
        }
        catch (ContextLengthExceededException e)
        {
            throw ApiException.Invalid(e.Message, requested is null ? promptParam : "max_tokens", "context_length_exceeded");
        }
        catch (ArgumentException e)
        {
            throw ApiException.Invalid(e.Message, promptParam);
        }

        return maxTokens;
    }

    /// <summary>
    /// Every choice generated at once. One choice streams straight from the mesh on the request's own flow;
    /// several arrive merged through a channel (which fails with the first error).
    /// </summary>
    private IAsyncEnumerable<ChoiceDelta> Produce(List<GenerationRequest> requests, ServedModel model, IReadOnlyList<string> stop, long started, CancellationTokenSource generation)
    {
        if (requests.Count == 1)
        {
            return ChoiceStream.RunAsync(0, new MeshClient(grains, meshLogger), requests[0], model, stop, metrics, started, generation.Token);
        }

        var channel = Channel.CreateUnbounded<ChoiceDelta>(new UnboundedChannelOptions { SingleReader = true });
        var remaining = requests.Count;
        for (var i = 0; i < requests.Count; i++)
        {
            var index = i;
            _ = Task.Run(async () =>
            {
                try
                {
                    var client = new MeshClient(grains, meshLogger);
                    await foreach (var delta in ChoiceStream.RunAsync(index, client, requests[index], model, stop, metrics, started, generation.Token).ConfigureAwait(false))
                    {
                        await channel.Writer.WriteAsync(delta, generation.Token).ConfigureAwait(false);
                    }

                    if (Interlocked.Decrement(ref remaining) == 0)
                    {
                        channel.Writer.TryComplete();
                    }
                }
                catch (Exception e)
                {
                    // The request fails with its first error; the other choices stop with it.
                    channel.Writer.TryComplete(e);
                    await generation.CancelAsync().ConfigureAwait(false);
                }
            });
        }

        return channel.Reader.ReadAllAsync(generation.Token);
    }

    private static async Task AnswerAsync(
        HttpResponse response, ResponseShape shape, ResponseIdentity identity, IAsyncEnumerable<ChoiceDelta> deltas, int choices, int promptTokens, CancellationToken cancellationToken)
    {
        var texts = Enumerable.Range(0, choices).Select(_ => new System.Text.StringBuilder()).ToArray();
        var finishes = new string?[choices];
        var tokens = new int[choices];
        await foreach (var delta in deltas.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            texts[delta.Index].Append(delta.Text);
            finishes[delta.Index] = delta.Finish;
            tokens[delta.Index] = delta.CompletionTokens;
        }

        await ResponseWriter.WriteJsonAsync(response, 200, json =>
        {
            identity.WriteStart(json, shape.Object);
            json.WriteStartArray("choices");
            for (var i = 0; i < choices; i++)
            {
                shape.WriteChoice(json, i, texts[i].ToString(), finishes[i], streamed: false, first: false);
            }

            json.WriteEndArray();
            new Usage(promptTokens, tokens.Sum()).Write(json);
            json.WriteEndObject();
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Server-sent events, one chunk per delta, then <c>[DONE]</c>. The response starts with the first
    /// token, so a request the mesh refuses at once (busy, context) still gets its HTTP status; a failure
    /// after that becomes the stream's last event (written by the endpoint's error handling).
    /// </summary>
    private static async Task StreamAsync(
        HttpResponse response, ResponseShape shape, ResponseIdentity identity, IAsyncEnumerable<ChoiceDelta> deltas, int choices,
        int promptTokens, bool includeUsage, CancellationToken cancellationToken)
    {
        var first = new bool[choices];
        Array.Fill(first, true);
        var tokens = new int[choices];
        var started = false;
        await foreach (var delta in deltas.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            if (!started)
            {
                ResponseWriter.StartEvents(response);
                started = true;
            }

            tokens[delta.Index] = delta.CompletionTokens;
            var isFirst = first[delta.Index];
            first[delta.Index] = false;
            await ResponseWriter.WriteEventAsync(response, json =>
            {
                identity.WriteStart(json, shape.ChunkObject);
                json.WriteStartArray("choices");
                shape.WriteChoice(json, delta.Index, delta.Text, delta.Finish, streamed: true, isFirst);
                json.WriteEndArray();
                if (includeUsage)
                {
                    json.WriteNull("usage");
                }

                json.WriteEndObject();
            }, cancellationToken).ConfigureAwait(false);
        }

        if (!started)
        {
            ResponseWriter.StartEvents(response);
        }

        if (includeUsage)
        {
            await ResponseWriter.WriteEventAsync(response, json =>
            {
                identity.WriteStart(json, shape.ChunkObject);
                json.WriteStartArray("choices");
                json.WriteEndArray();
                new Usage(promptTokens, tokens.Sum()).Write(json);
                json.WriteEndObject();
            }, cancellationToken).ConfigureAwait(false);
        }

        await ResponseWriter.WriteDoneAsync(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The API error for a failure while generating (null for cancellation, which the caller handles).</summary>
    internal static ApiException? ErrorOf(Exception e) => e switch
    {
        ApiException api => api,
        OperationCanceledException => null,
        _ => ApiException.FromMesh(e) ?? new ApiException(500, "server_error", null, $"generation failed: {e.Message}"),
    };
}
