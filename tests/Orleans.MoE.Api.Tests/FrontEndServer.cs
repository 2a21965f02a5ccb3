using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.MoE.Api.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Orleans.MoE.Grains;

namespace Orleans.MoE.Api.Tests;

/// <summary>
/// The front end on a free loopback port, as <c>moe serve</c> builds it: with a silo in the same process
/// (the embedded default) or with a test cluster's Orleans client. Log lines are kept for tests.
/// </summary>
internal sealed class FrontEndServer : IAsyncDisposable
{
    public const string Model = "moe-tiny-py";

    private FrontEndServer(WebApplication app, LogLines logs)
    {
        App = app;
        Logs = logs;
        BaseUrl = app.Urls.First();
        Http = new HttpClient { BaseAddress = new Uri(BaseUrl), Timeout = TimeSpan.FromSeconds(60) };
    }

    public WebApplication App { get; }

    public string BaseUrl { get; }

    public HttpClient Http { get; }

    public LogLines Logs { get; }

    /// <summary>The embedded default: a silo serving the demo model (or the model in <paramref name="directory"/>, under the same name) in this process.</summary>
    public static Task<FrontEndServer> StartEmbeddedAsync(Action<ApiOptions>? api = null, Action<MeshOptions>? mesh = null, string? directory = null) =>
        StartAsync(builder => builder.AddEmbeddedMesh(new Dictionary<string, string> { [Model] = directory ?? RepositoryPaths.DemoModel }, mesh), api);

    /// <summary>A front end for <paramref name="cluster"/>, through the test cluster's Orleans client (every silo a gateway).</summary>
    public static Task<FrontEndServer> StartForClusterAsync(MeshCluster cluster, Action<ApiOptions>? api = null) =>
        StartAsync(builder => builder.Services.AddSingleton<IGrainFactory>(cluster.Client), api);

    private static async Task<FrontEndServer> StartAsync(Action<WebApplicationBuilder> mesh, Action<ApiOptions>? api)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var logs = new LogLines();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(logs);
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Services.AddMoEApi(builder.Configuration, api);
        mesh(builder);
        var app = builder.Build();
        app.MapMoEApi();
        await app.StartAsync();
        var server = new FrontEndServer(app, logs);
        Assert.True(await Eventually.TrueAsync(() => server.Http.GetAsync("/readyz").Result.IsSuccessStatusCode, 30), "the front end became ready");
        return server;
    }

    public async Task<HttpResponseMessage> PostAsync(string path, string json, string? apiKey = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (apiKey is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }

        return await Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    }

    /// <summary>Posts and parses the JSON answer, asserting the status.</summary>
    public async Task<JsonElement> PostJsonAsync(string path, string json, int status = 200, string? apiKey = null)
    {
        using var response = await PostAsync(path, json, apiKey);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == status, $"{path} answered {(int)response.StatusCode}, not {status}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    /// <summary>A streamed answer's events (the JSON of each <c>data:</c> line) and whether it ended with [DONE].</summary>
    public async Task<(List<JsonElement> Events, bool Done)> StreamAsync(string path, string json)
    {
        using var response = await PostAsync(path, json);
        Assert.Equal(200, (int)response.StatusCode);
        Assert.StartsWith("text/event-stream", response.Content.Headers.ContentType?.ToString());
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var events = new List<JsonElement>();
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line == "data: [DONE]")
            {
                return (events, true);
            }

            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                events.Add(JsonDocument.Parse(line[6..]).RootElement.Clone());
            }
        }

        return (events, false);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

/// <summary>Log lines (with their scopes) kept in memory.</summary>
internal sealed class LogLines : ILoggerProvider, ISupportExternalScope
{
    private readonly ConcurrentQueue<string> _lines = new();
    private IExternalScopeProvider _scopes = new LoggerExternalScopeProvider();

    public IReadOnlyList<string> Lines => [.. _lines];

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

    public void Dispose()
    {
    }

    private sealed class Logger(LogLines owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => owner._scopes.Push(state);

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var scopes = new StringBuilder();
            owner._scopes.ForEachScope((scope, text) => text.Append(scope).Append(" => "), scopes);
            owner._lines.Enqueue($"{logLevel} {category}: {scopes}{formatter(state, exception)}");
        }
    }
}
