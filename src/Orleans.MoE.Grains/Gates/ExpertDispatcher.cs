using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.MoE.Grains.Diagnostics;
using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Placement;
using Orleans.MoE.Grains.Transport;

namespace Orleans.MoE.Grains.Gates;

/// <summary>
/// Sends a layer's routed tokens to the experts and collects their rows. For each expert it picks an
/// activation (a replica on this silo first, else replicas in turn), groups the experts by the silo
/// their activation is believed to live on (<see cref="ExpertLocations"/>) and sends <b>one batch per
/// destination silo</b> over the data channel (<see cref="DataChannelClient"/>), naming every expert of
/// the group. Experts with no known activation are located first with a grain call (which activates them
/// through placement, and says on which silo). Experts a destination no longer has, and every expert of
/// a batch that failed (its silo died, it timed out), are sent again after a short pause, located anew,
/// until <see cref="MeshOptions.ExpertRetryWindow"/> has passed; the experts are pure functions of their
/// input, so a retried step computes the same values. Experts that live on this silo run right here, in
/// one group, while the batches to other silos are in flight. In a sampled trace, a layer's fan-out is a
/// span with a child per batch (its silo, experts, tokens and bytes), continued on the destination silo.
/// </summary>
public sealed partial class ExpertDispatcher(
    IGrainFactory grains, DataChannelClient channel, ExpertLocations locations, LocalExperts local, MeshPlanView plans, MeshMetrics metrics,
    IOptions<MeshOptions> options, TimeProvider time, ILogger<ExpertDispatcher> logger)
{
    /// <summary>Errors that are not about reachability (activation refused, no room anywhere) are retried this long at most.</summary>
    private static readonly TimeSpan NonTransientRetry = TimeSpan.FromSeconds(5);

    private int _roundRobin;

    /// <summary>
    /// Computes every routed expert's rows. <paramref name="input"/> and <paramref name="results"/> hold the
    /// rows expert by expert (<paramref name="experts"/>: expert, first row, rows). Returns the experts
    /// skipped in degraded mode (empty unless it is enabled and a deadline passed).
    /// </summary>
    public async Task<IReadOnlySet<int>> RunAsync(string model, int layer, IReadOnlyList<(int Expert, int Offset, int Count)> experts,
        float[] input, float[] results, int hidden, Func<IReadOnlySet<int>, bool> canSkip, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(experts);
        ArgumentNullException.ThrowIfNull(canSkip);
        var pending = experts.ToDictionary(e => e.Expert);
        using var span = MeshTelemetry.StartChild("moe.gate.fan_out");
        span?.SetTag("gen_ai.request.model", model).SetTag("moe.layer", layer).SetTag("moe.experts", string.Join(",", experts.Select(e => e.Expert)))
            .SetTag("moe.tokens", experts.Sum(e => e.Count));
        var started = time.GetUtcNow();
        var deadline = started + options.Value.ExpertRetryWindow;
        var degraded = options.Value.Degraded;
        DateTimeOffset? skipAt = degraded.Enabled ? started + degraded.Deadline : null;
        Exception? lastError = null;
        var clean = true;
        var sent = Stopwatch.GetTimestamp();
        long slowestCompute = 0;
        for (var attempt = 0; ; attempt++)
        {
            var failures = 0;
            var chosen = pending.Values.Select(p => (Rows: p, Key: Choose(model, layer, p.Expert))).ToList();
            var unknown = chosen.Where(c => locations.Get(c.Key) is null).Select(c => c.Key).ToList();
            if (unknown.Count > 0)
            {
                clean = false;
                foreach (var (key, error) in await LocateAsync(unknown).ConfigureAwait(false))
                {
                    failures++;
                    lastError = error;
                    deadline = Failed(layer, [key], null, error, deadline);
                }
            }

            var requests = PlanRequests(chosen);
            var inflight = requests.Where(r => r.Silo != local.Silo).Select(r => (Task: Send(model, layer, r, input, hidden, cancellationToken), Request: r)).ToList();
            foreach (var here in requests.Where(r => r.Silo == local.Silo))
            {
                var computing = Stopwatch.GetTimestamp();
                var missing = local.Execute(model, layer, here.Slots(), input, results, hidden, here.Rows.Select(r => r.Offset).ToArray());
                slowestCompute = Math.Max(slowestCompute, (long)Stopwatch.GetElapsedTime(computing).TotalMicroseconds);
                for (var i = 0; i < here.Rows.Count; i++)
                {
                    if (missing.Contains(i))
                    {
                        locations.Forget(here.Keys[i]);
                    }
                    else
                    {
                        pending.Remove(here.Rows[i].Expert);
                    }
                }
            }

            while (inflight.Count > 0)
            {
                var waitForSkip = skipAt is { } at ? Task.Delay(Max(TimeSpan.Zero, at - time.GetUtcNow()), time, cancellationToken) : null;
                var done = waitForSkip is null
                    ? await Task.WhenAny(inflight.Select(i => (Task)i.Task)).ConfigureAwait(false)
                    : await Task.WhenAny(inflight.Select(i => (Task)i.Task).Append(waitForSkip)).ConfigureAwait(false);
                if (done == waitForSkip)
                {
                    skipAt = null;
                    var skipped = pending.Keys.ToHashSet();
                    if (canSkip(skipped))
                    {
                        foreach (var (task, _) in inflight)
                        {
                            _ = task.ContinueWith(t => t.Result.Rows.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
                        }

                        metrics.ExpertsSkipped(skipped.Count, $"layer {layer}: skipped experts {string.Join(",", skipped)} that had not answered within {degraded.Deadline.TotalMilliseconds} ms (degraded mode)");
                        return skipped;
                    }

                    continue;
                }

                var index = inflight.FindIndex(i => i.Task == done);
                var (call, request) = inflight[index];
                inflight.RemoveAt(index);
                try
                {
                    using var result = await call.ConfigureAwait(false);
                    slowestCompute = Math.Max(slowestCompute, result.ComputeMicroseconds);
                    Accept(request, result, pending, results, hidden);
                }
                catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    clean = false;
                    failures++;
                    lastError = e;
                    deadline = Failed(layer, request.Keys, request.Silo, e, deadline);
                }
            }

            if (pending.Count == 0)
            {
                if (clean && attempt == 0)
                {
                    metrics.DispatchMeasured(TimeSpan.FromMicroseconds(Math.Max(0, Stopwatch.GetElapsedTime(sent).TotalMicroseconds - slowestCompute)));
                }

                return new HashSet<int>();
            }

            clean = false;
            if (time.GetUtcNow() >= deadline)
            {
                throw new MeshStepException(
                    $"model '{model}' layer {layer}: experts {string.Join(",", pending.Keys)} did not answer within {options.Value.ExpertRetryWindow}" + (lastError is null ? "" : $": {lastError.Message}"),
                    lastError);
            }

            // Experts that had only moved (the destination no longer had them) are sent again at once to
            // their new silo; after failures, or when that keeps happening, with growing pauses.
            if (failures > 0 || attempt >= 2)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(500, 25 << Math.Min(attempt, 5))), time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>One batch: the silo it goes to and its experts' activations there.</summary>
    private sealed record Request(SiloAddress Silo, List<ExpertKey> Keys, List<(int Expert, int Offset, int Count)> Rows)
    {
        public ExpertSlot[] Slots() => Keys.Zip(Rows, (k, r) => new ExpertSlot(k.Expert, k.Replica, r.Count)).ToArray();
    }

    /// <summary>The chosen activations grouped by the silo each is believed to live on (those still unknown wait for the next attempt).</summary>
    private List<Request> PlanRequests(List<((int Expert, int Offset, int Count) Rows, ExpertKey Key)> chosen) =>
        chosen.Select(c => (c.Rows, c.Key, Silo: locations.Get(c.Key)))
            .Where(c => c.Silo is not null)
            .GroupBy(c => c.Silo!)
            .Select(g => new Request(g.Key, g.Select(c => c.Key).ToList(), g.Select(c => c.Rows).ToList()))
            .ToList();

    /// <summary>Asks each expert where it lives (activating it through placement where it has no activation); returns the experts that failed.</summary>
    private async Task<List<(ExpertKey Key, Exception Error)>> LocateAsync(List<ExpertKey> keys)
    {
        var answers = await Task.WhenAll(keys.Select(async key =>
        {
            try
            {
                var info = await grains.GetGrain<IExpertGrain>(key.ToString()).DescribeAsync().ConfigureAwait(false);
                channel.Learn(info.Silo, info.DataEndpoint);
                locations.Learn(key, info.Silo);
                return (key, (Exception?)null);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                return (key, e);
            }
        })).ConfigureAwait(false);
        return answers.Where(a => a.Item2 is not null).Select(a => (a.key, a.Item2!)).ToList();
    }

    /// <summary>Records a failed location or batch: forgets where its experts were believed to be; returns the retry deadline (shorter for errors that are not about reachability).</summary>
    private DateTimeOffset Failed(int layer, IEnumerable<ExpertKey> keys, SiloAddress? silo, Exception e, DateTimeOffset deadline)
    {
        var experts = keys.ToList();
        foreach (var key in experts)
        {
            locations.Forget(key);
        }

        var where = silo?.ToString() ?? "(locating)";
        metrics.ExpertCallFailed($"layer {layer}: experts {string.Join(",", experts.Select(k => k.Expert))} on {where} failed ({e.GetType().Name}: {e.Message}); sending again");
        LogCallFailed(logger, layer, where, e.Message);
        return MeshFaults.IsTransient(e) ? deadline : Min(deadline, time.GetUtcNow() + NonTransientRetry);
    }

    /// <summary>The activation to use for an expert: its only one, a replica on this silo, else replicas in turn.</summary>
    private ExpertKey Choose(string model, int layer, int expert)
    {
        var primary = new ExpertKey(model, layer, expert);
        var replicas = plans.Get(model).Replicas(layer, expert);
        if (replicas == 1)
        {
            return primary;
        }

        for (var r = 0; r < replicas; r++)
        {
            var key = primary with { Replica = r };
            if (local.IsHosted(key))
            {
                return key;
            }
        }

        return primary with { Replica = (int)((uint)Interlocked.Increment(ref _roundRobin) % (uint)replicas) };
    }

    /// <summary>Sends the request's rows as one batch; a batch over the channel's limit fails the step at once, saying which setting to change.</summary>
    private Task<ExpertBatchResult> Send(string model, int layer, Request request, float[] input, int hidden, CancellationToken cancellationToken)
    {
        var count = request.Rows.Sum(r => r.Count);
        var bytes = (long)count * hidden * sizeof(float);
        var limit = options.Value.DataChannel.MaxPayloadBytes;
        if (bytes > limit)
        {
            throw new MeshStepException(
                $"layer {layer}: {count} rows of {hidden} activations ({bytes} bytes) for silo {request.Silo} exceed the data channel's limit "
                + $"({limit} bytes, Mesh:DataChannel:MaxPayloadBytes); lower Mesh:Scheduler:MaxStepTokens or raise the limit");
        }

        return SendAsync(model, layer, request, input, hidden, count, cancellationToken);
    }

    private async Task<ExpertBatchResult> SendAsync(string model, int layer, Request request, float[] input, int hidden, int count, CancellationToken cancellationToken)
    {
        using var rows = TensorPayload.Rent(count, hidden);
        var target = rows.Values;
        var at = 0;
        foreach (var (_, offset, n) in request.Rows)
        {
            input.AsSpan(offset * hidden, n * hidden).CopyTo(target[(at * hidden)..]);
            at += n;
        }

        metrics.ExpertBatchSent();
        using var span = MeshTelemetry.StartChild("moe.experts.send", ActivityKind.Client);
        span?.SetTag("moe.silo", request.Silo.ToString()).SetTag("moe.layer", layer).SetTag("moe.experts", string.Join(",", request.Keys.Select(k => k.Expert)))
            .SetTag("moe.tokens", count).SetTag("moe.bytes", (long)count * hidden * sizeof(float));
        try
        {
            return await channel.ExecuteAsync(request.Silo, new ExpertBatch(model, layer, request.Slots(), rows), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            span?.SetStatus(ActivityStatusCode.Error, e.Message);
            throw;
        }
    }

    private void Accept(Request request, ExpertBatchResult result, Dictionary<int, (int Expert, int Offset, int Count)> pending, float[] results, int hidden)
    {
        var values = result.Rows.Values;
        var at = 0;
        for (var i = 0; i < request.Rows.Count; i++)
        {
            var (expert, offset, count) = request.Rows[i];
            if (result.Missing.Contains(i))
            {
                locations.Forget(request.Keys[i]);
            }
            else if (pending.Remove(expert))
            {
                locations.Learn(request.Keys[i], request.Silo);
                values.Slice(at * hidden, count * hidden).CopyTo(results.AsSpan(offset * hidden));
            }

            at += count;
        }
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Layer {Layer}: expert call to {Silo} failed, sending again: {Reason}")]
    private static partial void LogCallFailed(ILogger logger, int layer, string silo, string reason);
}
