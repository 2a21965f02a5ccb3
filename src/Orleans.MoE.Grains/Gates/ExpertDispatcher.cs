using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.MoE.Grains.Diagnostics;
using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Placement;
using Orleans.MoE.Grains.Transport;

namespace Orleans.MoE.Grains.Gates;

/// <summary>
/// Sends a layer's routed tokens to the experts and collects their rows. For each expert it picks an
/// activation (a replica on this silo first, else replicas in turn), groups the experts by the silo
/// their activation is believed to live on (<see cref="ExpertLocations"/>) and sends <b>one request per
/// destination silo</b>, addressed to one expert there, naming every expert of the group. Experts with
/// no known activation are sent alone (the call activates them through placement). Experts a destination no longer has, and every expert
/// of a request that failed (its silo died, it timed out), are sent again after a short pause, against
/// the new location or activation, until <see cref="MeshOptions.ExpertRetryWindow"/> has passed; the
/// experts are pure functions of their input, so a retried step computes the same values. Experts that
/// live on this silo run right here, in one group, while the requests to other silos are in flight.
/// </summary>
public sealed partial class ExpertDispatcher(
    IGrainFactory grains, ExpertLocations locations, LocalExperts local, MeshPlanView plans, MeshMetrics metrics,
    IOptions<MeshOptions> options, IOptions<SiloMessagingOptions> messaging, TimeProvider time, ILogger<ExpertDispatcher> logger)
{
    /// <summary>Room left in a message for everything but the rows (slots, headers).</summary>
    private const int MessageHeadroom = 64 * 1024;

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
            var requests = PlanRequests(model, layer, pending.Values);
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
                    foreach (var key in request.Keys)
                    {
                        locations.Forget(key);
                    }

                    if (!MeshFaults.IsTransient(e))
                    {
                        deadline = Min(deadline, time.GetUtcNow() + NonTransientRetry);
                    }

                    metrics.ExpertCallFailed($"layer {layer}: experts {string.Join(",", request.Keys.Select(k => k.Expert))} on {request.Silo?.ToString() ?? "(new activation)"} failed ({e.GetType().Name}: {e.Message}); sending again");
                    LogCallFailed(logger, layer, request.Silo?.ToString() ?? "(new activation)", e.Message);
                }
            }

            if (pending.Count == 0)
            {
                if (clean && attempt == 0)
                {
                    metrics.DispatchOverhead.Record(Math.Max(0, Stopwatch.GetElapsedTime(sent).TotalMicroseconds - slowestCompute));
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

    /// <summary>One request: the silo it is believed to go to (null: unknown) and its experts' activations, one of which it is addressed to.</summary>
    private sealed record Request(SiloAddress? Silo, List<ExpertKey> Keys, List<(int Expert, int Offset, int Count)> Rows)
    {
        public ExpertSlot[] Slots() => Keys.Zip(Rows, (k, r) => new ExpertSlot(k.Expert, k.Replica, r.Count)).ToArray();
    }

    private List<Request> PlanRequests(string model, int layer, IEnumerable<(int Expert, int Offset, int Count)> pending)
    {
        var requests = new List<Request>();
        foreach (var group in pending.Select(p => (Rows: p, Key: Choose(model, layer, p.Expert))).GroupBy(c => locations.Get(c.Key)))
        {
            if (group.Key is null)
            {
                requests.AddRange(group.Select(c => new Request(null, [c.Key], [c.Rows])));
            }
            else
            {
                requests.Add(new Request(group.Key, group.Select(c => c.Key).ToList(), group.Select(c => c.Rows).ToList()));
            }
        }

        return requests;
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

    private Task<ExpertBatchResult> Send(string model, int layer, Request request, float[] input, int hidden, CancellationToken cancellationToken)
    {
        var count = request.Rows.Sum(r => r.Count);
        var bytes = (long)count * hidden * sizeof(float);
        if (bytes > messaging.Value.MaxMessageBodySize - MessageHeadroom)
        {
            // Orleans would fail such a call as an unreachable silo; say what is wrong instead, once.
            throw new MeshStepException(
                $"layer {layer}: {count} rows of {hidden} activations ({bytes} bytes) for silo {request.Silo?.ToString() ?? "(new activation)"} exceed Orleans' message limit "
                + $"({messaging.Value.MaxMessageBodySize} bytes, Messaging:MaxMessageBodySize); lower Mesh:Scheduler:MaxStepTokens or raise the limit");
        }

        var rows = TensorPayload.Rent(count, hidden);
        var target = rows.Values;
        var at = 0;
        foreach (var (_, offset, n) in request.Rows)
        {
            input.AsSpan(offset * hidden, n * hidden).CopyTo(target[(at * hidden)..]);
            at += n;
        }

        var slots = request.Slots();
        // Addressed to one expert of the group, a different one each time: an activation runs one request at
        // a time, so batches from several gates to one silo spread over its experts and run side by side.
        var lead = request.Keys[(int)((uint)Interlocked.Increment(ref _roundRobin) % (uint)request.Keys.Count)];
        return SendAndRelease(grains.GetGrain<IExpertGrain>(lead.ToString()), new ExpertBatch(model, layer, slots, rows), cancellationToken);
    }

    private static async Task<ExpertBatchResult> SendAndRelease(IExpertGrain expert, ExpertBatch batch, CancellationToken cancellationToken)
    {
        using (batch.Rows)
        {
            return await expert.ExecuteAsync(batch, cancellationToken).ConfigureAwait(false);
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
                locations.Learn(request.Keys[i], result.Silo);
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
