using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.MoE.Grains.Catalog;
using Orleans.MoE.Grains.Cluster;
using Orleans.MoE.Grains.Diagnostics;
using Orleans.MoE.Grains.Experts;

namespace Orleans.MoE.Grains.Placement;

/// <summary>
/// This silo's part in placement and balance. At start: loads the configured models, registers each
/// copy's fingerprint with the model's plan grain and publishes the models it may serve (a refused copy
/// is never published, so nothing of that model is placed here; its reason is published instead). Then, every balancing round (a random
/// 50–150 % of the interval, so silos do not act in lock-step): reports its experts' load, receives the
/// plan and moves its own activations that the plan puts elsewhere (at most MaxMovesPerRound per round)
/// with Orleans migration. On a graceful stop it asks for a plan without itself and moves its experts
/// there first.
/// </summary>
public sealed partial class BalancerAgent(
    MeshSilos silos, IGrainFactory grains, MeshModels models, LocalExperts local, MeshPlanView plans, MeshMetrics metrics,
    IOptions<MeshOptions> options, ILogger<BalancerAgent> logger)
    : ILifecycleParticipant<ISiloLifecycle>, IDisposable
{
    private const int WarmUpsAtOnce = 8;
    private readonly CancellationTokenSource _stopping = new();
    private HashSet<SiloAddress> _members = [];

    public void Participate(ISiloLifecycle lifecycle)
    {
        ArgumentNullException.ThrowIfNull(lifecycle);
        lifecycle.Subscribe<BalancerAgent>(ServiceLifecycleStage.Active, OnSiloStartedAsync, OnSiloStoppingAsync);
    }

    public void Dispose() => _stopping.Dispose();

    private async Task OnSiloStartedAsync(CancellationToken cancellationToken)
    {
        models.LoadAll();
        await silos.RefreshAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        var published = new Dictionary<string, string?>();
        foreach (var (name, model) in models.Loaded)
        {
            var refusal = await grains.GetGrain<IMeshPlanGrain>(name).RegisterCheckpointAsync(silos.Local, model.Fingerprint).ConfigureAwait(false);
            if (refusal is null)
            {
                published[SiloMetadataKeys.Model(name)] = model.Fingerprint;
            }
            else
            {
                models.Reject(name, refusal);
            }
        }

        foreach (var (name, error) in models.Errors)
        {
            published[SiloMetadataKeys.ModelError(name)] = error.Length <= 300 ? error : error[..300] + "…";
        }

        await silos.PublishAsync(published, cancellationToken).ConfigureAwait(false);
        await local.PublishAsync().ConfigureAwait(false);
        _ = LoopAsync(_stopping.Token);
    }

    private async Task OnSiloStoppingAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        foreach (var name in models.Loaded.Keys)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return; // Not a graceful stop: the experts reactivate elsewhere when this silo is declared dead.
            }

            var plan = await grains.GetGrain<IMeshPlanGrain>(name).PlanWithoutAsync(silos.Local).ConfigureAwait(false);
            plans.Update(name, plan);
            await MoveAsync(name, plan, int.MaxValue).ConfigureAwait(false);
        }
    }

    /// <summary>One round for every model: report, take the plan, move what the plan moves.</summary>
    public async Task BalanceOnceAsync()
    {
        NoteMembership();
        await silos.RefreshAsync().ConfigureAwait(false);
        foreach (var name in models.Loaded.Keys)
        {
            var report = new SiloReport(silos.Local, local.HostedLoad(name), local.Budget, local.Free);
            var plan = await grains.GetGrain<IMeshPlanGrain>(name).ReportAsync(report).ConfigureAwait(false);
            plans.Update(name, plan);
            if (options.Value.Balancer.Enabled)
            {
                await MoveAsync(name, plan, options.Value.Balancer.MaxMovesPerRound).ConfigureAwait(false);
            }

            await ActivatePlannedAsync(name, plan).ConfigureAwait(false);
        }
    }

    private async Task LoopAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            var interval = options.Value.Balancer.Interval;
            try
            {
                await Task.Delay(interval * (0.5 + Random.Shared.NextDouble()), stopping).ConfigureAwait(false);
                await BalanceOnceAsync().ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // A round that fails (a silo died mid-call, the plan grain is moving) is simply tried again next time.
                LogRoundFailed(logger, e.ToString());
            }
        }
    }

    /// <summary>Silos that joined or left since the last round, as events (recorded once: by the live silo with the lowest address).</summary>
    private void NoteMembership()
    {
        var members = silos.Live.Select(s => s.Address).ToHashSet();
        if (_members.Count > 0 && members.Select(a => a.ToString()).Min(StringComparer.Ordinal) == silos.Local.ToString())
        {
            foreach (var gone in _members.Except(members))
            {
                metrics.Record($"silo {gone} left the mesh; its experts reactivate on the live silos");
            }

            foreach (var joined in members.Except(_members))
            {
                metrics.Record($"silo {joined} joined the mesh");
            }
        }

        _members = members;
    }

    /// <summary>
    /// Warms up the experts the plan puts on this silo and that are not active here: asking one to
    /// describe itself activates it (here, through placement) unless it is active elsewhere already, in
    /// which case its silo's own round moves it. So a mesh serves its first request without activations.
    /// </summary>
    private async Task ActivatePlannedAsync(string model, MeshPlan plan)
    {
        var hosted = local.Hosted.ToHashSet();
        var missing = plan.Experts.Where(p => p.Silo.Equals(silos.Local))
            .Select(p => new ExpertKey(model, p.Layer, p.Expert, p.Replica))
            .Where(k => !hosted.Contains(k))
            .ToList();
        try
        {
            // A few at a time: each activation reads its expert's weights in.
            foreach (var chunk in missing.Chunk(WarmUpsAtOnce))
            {
                await Task.WhenAll(chunk.Select(k => grains.GetGrain<IExpertGrain>(k.ToString()).DescribeAsync())).ConfigureAwait(false);
            }

            var activated = missing.Count(local.IsHosted);
            if (activated > 0)
            {
                var planned = plan.Experts.Where(p => p.Silo.Equals(silos.Local)).Select(p => new ExpertKey(model, p.Layer, p.Expert, p.Replica)).ToList();
                metrics.Record($"plan v{plan.Version} of {model}: activated {activated} of its experts here; {planned.Count(local.IsHosted)} of the {planned.Count} it places here are active");
            }
        }
        catch (Exception e) when (MeshFaults.IsTransient(e) || e is OrleansException or ExpertCapacityException or ModelUnavailableException or InvalidOperationException)
        {
            LogRoundFailed(logger, e.Message);
        }
    }

    /// <summary>Moves local activations the plan places on another live silo; retires replicas the plan no longer has.</summary>
    private async Task MoveAsync(string model, MeshPlan plan, int limit)
    {
        if (plan.Version == 0)
        {
            return;
        }

        var live = silos.Live.Where(s => s.Metadata.ContainsKey(SiloMetadataKeys.Model(model))).Select(s => s.Address).ToHashSet();
        var moves = local.Hosted.Where(k => k.Model == model)
            .Select(k => (Key: k, Target: plan.TargetOf(k)))
            .Where(m => (m.Target is null && m.Key.Replica > 0) || (m.Target is not null && !m.Target.Equals(silos.Local) && live.Contains(m.Target)))
            .OrderBy(m => m.Key.Layer).ThenBy(m => m.Key.Expert).ThenBy(m => m.Key.Replica)
            .Take(limit)
            .ToList();

        // A few at a time: each move activates the expert on its new silo, which reads its weights in.
        foreach (var chunk in moves.Chunk(WarmUpsAtOnce))
        {
            await Task.WhenAll(chunk.Select(m => MoveOneAsync(m.Key, m.Target))).ConfigureAwait(false);
        }
    }

    /// <summary>Migrates one expert activation to <paramref name="target"/>, or retires a replica the plan no longer has.</summary>
    private async Task MoveOneAsync(ExpertKey key, SiloAddress? target)
    {
        try
        {
            if (target is null)
            {
                await grains.GetGrain<IExpertGrain>(key.ToString()).RetireAsync().ConfigureAwait(false);
                metrics.Record($"replica {key} retired (its load no longer needs it)");
            }
            else
            {
                LogMoving(logger, key, target);
                await grains.GetGrain<IExpertGrain>(key.ToString()).MoveAsync(target).ConfigureAwait(false);
                metrics.Record($"expert {key} moved to {target}");
            }
        }
        catch (Exception e) when (MeshFaults.IsTransient(e) || e is OrleansException or ExpertCapacityException or ModelUnavailableException or InvalidOperationException)
        {
            LogMoveFailed(logger, key.ToString(), e.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Moving expert {Expert} to {Target}")]
    private static partial void LogMoving(ILogger logger, ExpertKey expert, SiloAddress target);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Moving expert {Expert} failed: {Reason}")]
    private static partial void LogMoveFailed(ILogger logger, string expert, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Balancing round failed: {Reason}")]
    private static partial void LogRoundFailed(ILogger logger, string reason);
}
