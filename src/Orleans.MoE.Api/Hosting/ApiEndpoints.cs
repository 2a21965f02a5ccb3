using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Dashboard;
using Orleans.MoE.Api.Dashboard;
using Orleans.MoE.Api.OpenAi;
using Orleans.MoE.Api.Operations;
using Orleans.MoE.Api.Protection;
using Orleans.MoE.Api.Serving;

namespace Orleans.MoE.Api.Hosting;

/// <summary>
/// The front end's routes: the OpenAI-compatible API under <c>/v1</c>, <c>/healthz</c>, <c>/readyz</c>,
/// <c>/metrics</c>, the dashboard at <c>/</c> with its data at <c>/api/mesh</c>.
/// </summary>
public static partial class ApiEndpoints
{
    /// <summary>A too-large body up to this size is read before the 413 is sent.</summary>
    private const long MAX_DRAINED_BYTES = 16 << 20;

    private static readonly Func<ILogger, string, IDisposable?> s_requestScope = LoggerMessage.DefineScope<string>("RequestId:{RequestId}");

    /// <summary>Where Prometheus scrapes the front end's metrics.</summary>
    public const string MetricsPath = "/metrics";

    /// <summary>Where Orleans' own dashboard (grains, silos, calls) is served, behind the API key.</summary>
    public const string OrleansDashboardPath = "/orleans";

    /// <summary>Maps the front end onto <paramref name="app"/> (after <c>services.AddMoEApi()</c>).</summary>
    public static WebApplication MapMoEApi(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.Use(RequestIdAsync);
        app.MapPost("/v1/completions", (HttpContext c) => GuardedAsync(c, "completions", true, (s, body, ct) => s.GetRequiredService<CompletionService>().CompletionsAsync(c, body, ct)));
        app.MapPost("/v1/chat/completions", (HttpContext c) => GuardedAsync(c, "chat.completions", true, (s, body, ct) => s.GetRequiredService<CompletionService>().ChatCompletionsAsync(c, body, ct)));
        app.MapGet("/v1/models", (HttpContext c) => GuardedAsync(c, "models", false, (s, _, ct) => ModelsAsync(c, s, ct)));
        app.MapGet("/v1/models/{name}", (HttpContext c, string name) => GuardedAsync(c, "models", false, (s, _, ct) => ModelAsync(c, s, name, ct)));
        app.MapGet("/api/mesh", (HttpContext c) => GuardedAsync(c, "mesh", false, (s, _, ct) => MeshAsync(c, s, ct)));
        app.MapGet("/healthz", () => Results.Text("ok\n"));
        app.MapGet("/readyz", (HttpContext c) => Readiness.WriteAsync(c));
        // Prometheus text from OpenTelemetry's exporter: the mesh's meter (with the whole mesh as last read,
        // renewed first when older than a second), Orleans', ASP.NET Core's and the .NET runtime's.
        app.Services.GetRequiredService<MeshInstruments>();
        app.MapPrometheusScrapingEndpoint(MetricsPath, meterProvider: null, configureBranchedPipeline: metrics => metrics.Use(async (context, next) =>
        {
            await context.RequestServices.GetRequiredService<MeshSnapshots>().RenewAsync().ConfigureAwait(false);
            await next(context).ConfigureAwait(false);
        }), optionsName: null);
        if (app.Services.GetService<OrleansDashboardServices>() is not null)
        {
            app.Use(RequireKeyForOrleansDashboardAsync);
            app.MapOrleansDashboard(OrleansDashboardPath);
        }
        DashboardFiles.Map(app);
        app.MapFallback((HttpContext c) => ResponseWriter.WriteErrorAsync(c.Response,
            new ApiException(404, "invalid_request_error", "unknown_url", $"Unknown request URL: {c.Request.Method} {c.Request.Path}."), c.RequestAborted));
        return app;
    }

    /// <summary>Orleans' dashboard answers only callers with a key (header or cookie) when keys are configured.</summary>
    private static async Task RequireKeyForOrleansDashboardAsync(HttpContext context, RequestDelegate next)
    {
        if (context.Request.Path.StartsWithSegments(OrleansDashboardPath, StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                context.RequestServices.GetRequiredService<ApiKeys>().Authenticate(context, cookie: true);
            }
            catch (ApiException error)
            {
                await WriteErrorAsync(context, error).ConfigureAwait(false);
                return;
            }
        }

        await next(context).ConfigureAwait(false);
    }

    /// <summary>
    /// Every API call: the caller's key, its concurrency slot, the body (size-limited JSON), the timeout,
    /// and the error shape; a client that goes away just ends its request (its generation is cancelled).
    /// </summary>
    private static async Task GuardedAsync(HttpContext context, string endpoint, bool hasBody, Func<IServiceProvider, ReadOnlyMemory<byte>, CancellationToken, Task> handle)
    {
        var services = context.RequestServices;
        var options = services.GetRequiredService<IOptions<ApiOptions>>().Value;
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("Orleans.MoE.Api");
        var started = Stopwatch.GetTimestamp();
        RequestArrival.Set(context, started);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        timeout.CancelAfter(options.RequestTimeout);
        var caller = "?";
        try
        {
            caller = services.GetRequiredService<ApiKeys>().Authenticate(context);
            using var slot = services.GetRequiredService<ConcurrencyLimits>().Acquire(caller);
            var body = hasBody ? await ReadBodyAsync(context, options.MaxRequestBodyBytes, timeout.Token).ConfigureAwait(false) : ReadOnlyMemory<byte>.Empty;
            await handle(services, body, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (context.RequestAborted.IsCancellationRequested || (!timeout.IsCancellationRequested && e is (IOException and not BadHttpRequestException) or OperationCanceledException))
        {
            // The client went away: seen as the request's cancellation, or first as a failed write.
            LogDisconnected(logger, context.TraceIdentifier, endpoint);
            if (!context.Response.HasStarted)
            {
                context.Response.StatusCode = 499; // Recorded as nginx does: the client closed the request.
            }
        }
        catch (Exception e) when (ErrorFor(e, timeout.IsCancellationRequested) is { } error)
        {
            if (error.Status >= 500)
            {
                LogFailed(logger, context.TraceIdentifier, endpoint, error.Status, e.ToString());
            }

            await WriteErrorAsync(context, error).ConfigureAwait(false);
        }
        finally
        {
            var elapsed = Stopwatch.GetElapsedTime(started);
            LogRequest(logger, context.TraceIdentifier, context.Request.Method, context.Request.Path.Value ?? "", context.Response.StatusCode, elapsed.TotalMilliseconds, caller);
        }
    }

    private static ApiException? ErrorFor(Exception e, bool timedOut) => e switch
    {
        OperationCanceledException when timedOut => new ApiException(504, "server_error", "timeout", "the request took longer than this server allows (Api:RequestTimeout)"),
        BadHttpRequestException bad => new ApiException(bad.StatusCode, "invalid_request_error", bad.StatusCode == 413 ? "request_too_large" : null, bad.Message),
        _ => CompletionService.ErrorOf(e),
    };

    /// <summary>Writes the error as the response, or as a last event when a stream has already begun (unless the client is gone by then).</summary>
    private static async Task WriteErrorAsync(HttpContext context, ApiException error)
    {
        try
        {
            await (context.Response.HasStarted
                ? ResponseWriter.WriteEventAsync(context.Response, json => ResponseWriter.WriteError(json, error), context.RequestAborted)
                : ResponseWriter.WriteErrorAsync(context.Response, error, context.RequestAborted)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // Nobody is left to read it; the request log line records the status.
        }
    }

    private static async Task<ReadOnlyMemory<byte>> ReadBodyAsync(HttpContext context, long limit, CancellationToken cancellationToken)
    {
        var request = context.Request;
        if (request.ContentType is { } type && !type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
        {
            throw new ApiException(415, "invalid_request_error", "unsupported_media_type", $"the body must be application/json, not {type}");
        }

        var size = context.Features.Get<IHttpMaxRequestBodySizeFeature>();
        if (request.ContentLength > limit)
        {
            // Read (and drop) a body of reasonable size first, so the client is not still sending when the
            // connection closes: that would reset it and lose the answer.
            if (request.ContentLength <= MAX_DRAINED_BYTES && size is { IsReadOnly: false })
            {
                size.MaxRequestBodySize = null;
                await request.Body.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
            }

            throw new ApiException(413, "invalid_request_error", "request_too_large", $"the request body has {request.ContentLength} bytes; this server accepts at most {limit}");
        }

        if (size is { IsReadOnly: false })
        {
            size.MaxRequestBodySize = limit;
        }

        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
        return buffer.Length > limit
            ? throw new ApiException(413, "invalid_request_error", "request_too_large", $"the request body is larger than {limit} bytes")
            : buffer.ToArray();
    }

    private static async Task ModelsAsync(HttpContext context, IServiceProvider services, CancellationToken cancellationToken)
    {
        var names = await services.GetRequiredService<ModelCatalog>().ListAsync().ConfigureAwait(false);
        await ResponseWriter.WriteJsonAsync(context.Response, 200, json =>
        {
            json.WriteStartObject();
            json.WriteString("object", "list");
            json.WriteStartArray("data");
            foreach (var name in names)
            {
                WriteModel(json, name);
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }, cancellationToken).ConfigureAwait(false);
    }

    private static async Task ModelAsync(HttpContext context, IServiceProvider services, string name, CancellationToken cancellationToken)
    {
        var model = await services.GetRequiredService<ModelCatalog>().GetAsync(name).ConfigureAwait(false);
        await ResponseWriter.WriteJsonAsync(context.Response, 200, json => WriteModel(json, model.Name), cancellationToken).ConfigureAwait(false);
    }

    private static void WriteModel(System.Text.Json.Utf8JsonWriter json, string name)
    {
        json.WriteStartObject();
        json.WriteString("id", name);
        json.WriteString("object", "model");
        json.WriteNumber("created", 0);
        json.WriteString("owned_by", "orleans-moe");
        json.WriteEndObject();
    }

    private static async Task MeshAsync(HttpContext context, IServiceProvider services, CancellationToken cancellationToken)
    {
        var snapshot = await services.GetRequiredService<MeshSnapshots>().ReadAsync().ConfigureAwait(false);
        var names = services.GetRequiredService<SiloNames>();
        context.Response.Headers.CacheControl = "no-store";
        await ResponseWriter.WriteJsonAsync(context.Response, 200, json => MeshView.Write(json, snapshot, names, DateTimeOffset.UtcNow), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Every request gets an id: the caller's <c>X-Request-Id</c> when it is a plain token, else a new one.
    /// It is echoed in the response, scopes the front end's logs and travels with the request into the mesh.
    /// </summary>
    private static async Task RequestIdAsync(HttpContext context, RequestDelegate next)
    {
        var given = context.Request.Headers["X-Request-Id"].ToString();
        var id = given.Length is > 0 and <= 64 && given.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')
            ? given
            : "req-" + Guid.NewGuid().ToString("N")[..16];
        context.TraceIdentifier = id;
        context.Response.Headers["X-Request-Id"] = id;
        var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Orleans.MoE.Api");
        using (s_requestScope(logger, id))
        {
            await next(context).ConfigureAwait(false);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Request {RequestId}: {Method} {Path} answered {Status} in {Milliseconds:F1} ms for {Caller}")]
    private static partial void LogRequest(ILogger logger, string requestId, string method, string path, int status, double milliseconds, string caller);

    [LoggerMessage(Level = LogLevel.Information, Message = "Request {RequestId}: the client went away during {Endpoint}; its generation is cancelled")]
    private static partial void LogDisconnected(ILogger logger, string requestId, string endpoint);

    [LoggerMessage(Level = LogLevel.Error, Message = "Request {RequestId}: {Endpoint} failed with {Status}: {Error}")]
    private static partial void LogFailed(ILogger logger, string requestId, string endpoint, int status, string error);
}
