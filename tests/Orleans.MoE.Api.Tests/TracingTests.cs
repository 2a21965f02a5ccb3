using System.Diagnostics;
using System.Text;
using OpenTelemetry;
using OpenTelemetry.Trace;
using Orleans.MoE.Grains.Diagnostics;

namespace Orleans.MoE.Api.Tests;

/// <summary>
/// One completion is one trace across the silos: the front end's HTTP span, Orleans' grain calls into the
/// scheduler's silo, its steps, each layer's fan-out with a span per destination silo, and the experts'
/// spans on those silos (over the data channel); the front end's log entries carry the trace.
/// </summary>
public sealed class TracingTests
{
    [Fact]
    public async Task A_completions_trace_reaches_the_expert_spans_on_the_other_silos()
    {
        var spans = new SpanCollection();
        using var tracing = Sdk.CreateTracerProviderBuilder()
            .AddAspNetCoreInstrumentation()
            .AddSource(MeshTelemetry.Name).AddSource(MeshTelemetry.OrleansSources)
            .SetSampler(MeshSampler.FromSettings(null, null))
            .AddInMemoryExporter(spans)
            .Build();
        await using var mesh = await MeshCluster.StartAsync(3, new Dictionary<string, string> { [FrontEndServer.Model] = RepositoryPaths.DemoModel });
        await mesh.WaitForSpreadAsync(FrontEndServer.Model);
        await using var server = await FrontEndServer.StartForClusterAsync(mesh);

        // The request carries a trace of its own (W3C traceparent, as a traced caller would send it): the listeners
        // are process-wide, so the spans also hold the requests of tests running beside this one.
        var traceId = ActivityTraceId.CreateRandom();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
        {
            Content = new StringContent($$"""{"model":"{{FrontEndServer.Model}}","prompt":"def fibonacci(n):","max_tokens":4,"temperature":0}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom()}-01");
        using var response = await server.Http.SendAsync(request);
        Assert.True((int)response.StatusCode == 200, await response.Content.ReadAsStringAsync());
        var requestId = response.Headers.GetValues("X-Request-Id").Single();

        // Spans are exported as they end: the HTTP span once the answer is written, the last step's span once
        // the scheduler is done with it (it published the last token before, so it may end after the answer).
        Activity? http = null;
        Assert.True(await Eventually.TrueAsync(() => (http = spans.Snapshot().FirstOrDefault(s => s.TraceId == traceId && s.Kind == ActivityKind.Server && s.DisplayName.Contains("/v1/completions", StringComparison.Ordinal))) is not null, 10),
            "the request's HTTP span ended");
        await Eventually.TrueAsync(() => spans.Snapshot().Count(s => s.TraceId == traceId && s.OperationName == "moe.scheduler.step") >= 4, 10);
        var trace = spans.Snapshot().Where(s => s.TraceId == traceId).ToList();

        Assert.Contains(trace, s => MeshTelemetry.OrleansSources.Contains(s.Source.Name) && s.Kind == ActivityKind.Server && s.DisplayName == "IGenerationGrain/StartAsync");

        // Grain calls that no request made (Orleans' own, the balancer's) start no trace.
        Assert.DoesNotContain(spans.Snapshot(), s => MeshTelemetry.OrleansSources.Contains(s.Source.Name) && s.ParentSpanId == default);
        var steps = trace.Where(s => s.OperationName == "moe.scheduler.step").ToList();
        Assert.True(steps.Count >= 4, $"a step per token: {steps.Count}");
        Assert.All(steps, s => Assert.Equal(FrontEndServer.Model, s.GetTagItem("gen_ai.request.model")));
        var fanOuts = trace.Where(s => s.OperationName == "moe.gate.fan_out").ToList();
        Assert.NotEmpty(fanOuts);
        var sends = trace.Where(s => s.OperationName == "moe.experts.send").ToDictionary(s => s.SpanId);
        Assert.All(sends.Values, s => Assert.Contains(s.ParentSpanId, fanOuts.Select(f => f.SpanId)));
        Assert.All(sends.Values, s => Assert.True((int)s.GetTagItem("moe.tokens")! > 0 && (long)s.GetTagItem("moe.bytes")! > 0 && s.GetTagItem("moe.experts") is string { Length: > 0 }));

        // The experts' spans ran on the silos the batches went to (other silos than the scheduler's, by construction).
        var executions = trace.Where(s => s.OperationName == "moe.experts.execute").ToList();
        Assert.NotEmpty(executions);
        Assert.All(executions, e =>
        {
            Assert.Equal(ActivityKind.Server, e.Kind);
            Assert.True(sends.TryGetValue(e.ParentSpanId, out var send), "an expert span's parent is the batch's send span");
            Assert.Equal(send!.GetTagItem("moe.silo"), e.GetTagItem("moe.silo"));
            Assert.Equal(send.GetTagItem("moe.experts"), e.GetTagItem("moe.experts"));
        });
        var silos = executions.Select(e => (string)e.GetTagItem("moe.silo")!).ToHashSet();
        Assert.True(silos.Count == 2, $"the experts on both other silos answered in the trace: {string.Join(", ", silos)}");
        Assert.All(silos, s => Assert.Contains(mesh.Silos, silo => silo.SiloAddress.ToString() == s));

        // The front end's log entry for the request carries the trace.
        Assert.Contains(server.Logs.Lines, l => l.Contains($"Request {requestId}:", StringComparison.Ordinal) && l.Contains($"TraceId:{http!.TraceId}", StringComparison.Ordinal));
    }
}
