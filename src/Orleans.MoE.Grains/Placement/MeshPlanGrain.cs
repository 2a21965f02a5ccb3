using System.Globalization;
using Microsoft.Extensions.Options;
using Orleans.MoE.Gpu.Experts;
using Orleans.MoE.Grains.Catalog;
using Orleans.MoE.Grains.Cluster;
using Orleans.MoE.Grains.Experts;

namespace Orleans.MoE.Grains.Placement;

/// <summary>
/// The expert plan of one model (key: model name) and what it is computed from: the mesh's checkpoint
/// fingerprint (the first silo to register sets it; while a live silo serves those files, silos with
/// other files are turned away; once none does, the next registration's files take over), the silos'
/// latest reports and a history of load. All of it is grain state, so it survives a restart of the whole
/// cluster. Silos call it from their balancing rounds, each at its own randomised time.
/// </summary>
[Alias("moe.IMeshPlanGrain")]
public interface IMeshPlanGrain : IGrainWithStringKey
{
    /// <summary>Null when <paramref name="fingerprint"/> is the mesh's checkpoint (or becomes it); else why <paramref name="registrant"/>'s copy is refused.</summary>
    [Alias("RegisterCheckpoint")]
    Task<string?> RegisterCheckpointAsync(SiloAddress registrant, string fingerprint);

    /// <summary>Records a silo's load and activations and returns the plan, recomputed when the mesh is out of balance.</summary>
    [Alias("Report")]
    Task<MeshPlan> ReportAsync(SiloReport report);

    /// <summary>A plan without <paramref name="leaving"/> (it is shutting down gracefully and moves its experts off first).</summary>
    [Alias("PlanWithout")]
    Task<MeshPlan> PlanWithoutAsync(SiloAddress leaving);

    [Alias("GetPlan")]
    Task<MeshPlan> GetPlanAsync();

    [Alias("GetStatus")]
    Task<MeshStatus> GetStatusAsync();
}

/// <summary>Persisted state of <see cref="MeshPlanGrain"/>.</summary>
[GenerateSerializer]
[Alias("moe.MeshPlanState")]
public sealed class MeshPlanState
{
    [Id(0)]
    public string? Fingerprint { get; set; }

    [Id(1)]
    public int Version { get; set; }

    [Id(2)]
    public List<PlannedExpertState> Experts { get; set; } = [];

    /// <summary>Latest report per silo (address text).</summary>
    [Id(3)]
    public Dictionary<string, SiloReportState> Reports { get; set; } = [];

    /// <summary>Tokens per expert over the load window, one snapshot per balancing interval at most, newest last (the last 60).</summary>
    [Id(4)]
    public List<LoadSnapshot> History { get; set; } = [];

    [Id(5)]
    public Dictionary<string, string> Rejected { get; set; } = [];

    /// <summary>Silos whose files were accepted as the mesh's, and when.</summary>
    [Id(6)]
    public Dictionary<string, DateTimeOffset> Accepted { get; set; } = [];
}

[GenerateSerializer]
[Alias("moe.PlannedExpertState")]
public sealed class PlannedExpertState
{
    [Id(0)]
    public int Layer { get; set; }

    [Id(1)]
    public int Expert { get; set; }

    [Id(2)]
    public int Replica { get; set; }

    [Id(3)]
    public string Silo { get; set; } = "";
}

[GenerateSerializer]
[Alias("moe.SiloReportState")]
public sealed class SiloReportState
{
    [Id(0)]
    public DateTimeOffset Time { get; set; }

    [Id(1)]
    public long Budget { get; set; }

    [Id(2)]
    public long Free { get; set; }

    [Id(3)]
    public Dictionary<string, long> Experts { get; set; } = [];
}

[GenerateSerializer]
[Alias("moe.LoadSnapshot")]
public sealed class LoadSnapshot
{
    [Id(0)]
    public DateTimeOffset Time { get; set; }

    /// <summary>Per MoE layer, tokens per expert index.</summary>
    [Id(1)]
    public Dictionary<int, long[]> Layers { get; set; } = [];
}

[ModelSiloPlacement]
public sealed class MeshPlanGrain(
    [PersistentState("mesh-plan", MeshStorage.Name)] IPersistentState<MeshPlanState> state,
    MeshSilos silos, MeshModels models, IOptions<MeshOptions> options, TimeProvider time) : Grain, IMeshPlanGrain
{
    private const int HistoryLength = 60;

    /// <summary>
    /// A silo accepted this recently counts as holding the mesh's files even if this silo's view of the
    /// cluster does not show it yet (silos starting together, a few membership-table reads).
    /// </summary>
    private static readonly TimeSpan RecentlyAccepted = TimeSpan.FromSeconds(5);

    private MeshPlanState State => state.State;

    private string Model => this.GetPrimaryKeyString();

    public async Task<string?> RegisterCheckpointAsync(SiloAddress registrant, string fingerprint)
    {
        ArgumentNullException.ThrowIfNull(registrant);
        var now = time.GetUtcNow();
        var active = silos.Live.Select(s => s.Address.ToParsableString()).ToHashSet();
        var holders = State.Accepted.Where(a => active.Contains(a.Key) || now - a.Value < RecentlyAccepted).ToList();
        if (State.Fingerprint != fingerprint && holders.Count == 0)
        {
            // No silo that had the mesh's files is around (first registration, or the whole cluster was
            // restarted with new files): these become the mesh's, and the old plan and load go with the old files.
            State.Fingerprint = fingerprint;
            State.Experts.Clear();
            State.History.Clear();
            State.Reports.Clear();
            State.Rejected.Clear();
            State.Accepted.Clear();
        }

        var key = registrant.ToParsableString();
        string? refusal = State.Fingerprint == fingerprint
            ? null
            : $"its checkpoint of '{Model}' (fingerprint {fingerprint}) differs from the mesh's ({State.Fingerprint}); give every silo the same files";
        if (refusal is null)
        {
            State.Rejected.Remove(key);
            State.Accepted[key] = now;
            foreach (var gone in State.Accepted.Keys.Where(k => !active.Contains(k) && now - State.Accepted[k] >= RecentlyAccepted).ToList())
            {
                State.Accepted.Remove(gone);
            }
        }
        else
        {
            State.Rejected[key] = refusal;
        }

        await state.WriteStateAsync().ConfigureAwait(true);
        return refusal;
    }

    public async Task<MeshPlan> ReportAsync(SiloReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var now = time.GetUtcNow();
        State.Reports[report.Silo.ToParsableString()] = new SiloReportState
        {
            Time = now,
            Budget = report.Budget,
            Free = report.Free,
            Experts = report.Experts.ToDictionary(e => e.Key, e => e.Tokens),
        };
        var live = LiveSilos();
        foreach (var gone in State.Reports.Keys.Where(k => !live.Any(s => s.Address.ToParsableString() == k)).ToList())
        {
            State.Reports.Remove(gone);
        }

        // Silos report every interval each; the history takes one snapshot per interval, and the state is
        // written when the plan changes or a snapshot is taken (so its size and write rate do not grow with the silos).
        var load = Load();
        var snapshot = State.History.Count == 0 || now - State.History[^1].Time >= options.Value.Balancer.Interval * 0.9;
        if (snapshot)
        {
            State.History.Add(new LoadSnapshot
            {
                Time = now,
                Layers = load.GroupBy(l => l.Key.Layer).ToDictionary(g => g.Key, g =>
                {
                    var tokens = new long[g.Max(l => l.Key.Expert) + 1];
                    foreach (var (key, value) in g)
                    {
                        tokens[key.Expert] = value;
                    }

                    return tokens;
                }),
            });
            if (State.History.Count > HistoryLength)
            {
                State.History.RemoveRange(0, State.History.Count - HistoryLength);
            }
        }

        var version = State.Version;
        var plan = Replan(live, load);
        if (snapshot || plan.Version != version)
        {
            await state.WriteStateAsync().ConfigureAwait(true);
        }

        return plan;
    }

    public async Task<MeshPlan> PlanWithoutAsync(SiloAddress leaving)
    {
        ArgumentNullException.ThrowIfNull(leaving);
        State.Accepted.Remove(leaving.ToParsableString()); // It no longer holds the mesh's files: a cluster restarted with new ones need not wait for it.
        var plan = Replan(LiveSilos().Where(s => s.Address != leaving).ToList(), Load());
        await state.WriteStateAsync().ConfigureAwait(true);
        return plan;
    }

    public Task<MeshPlan> GetPlanAsync() => Task.FromResult(CurrentPlan());

    public Task<MeshStatus> GetStatusAsync() => Task.FromResult(new MeshStatus(
        Model,
        State.Fingerprint,
        CurrentPlan(),
        State.Reports.Select(r => new SiloReport(SiloAddress.FromParsableString(r.Key), r.Value.Experts.Select(e => new ExpertLoad(e.Key, e.Value)).ToArray(), r.Value.Budget, r.Value.Free)).ToArray(),
        new Dictionary<string, string>(State.Rejected),
        State.History.Count));

    private MeshPlan CurrentPlan() => new(State.Version, State.Experts.Select(e => new PlannedExpert(e.Layer, e.Expert, e.Replica, SiloAddress.FromParsableString(e.Silo))).ToArray());

    /// <summary>Live silos that serve this model, as placement sees them.</summary>
    private List<SiloInfo> LiveSilos() =>
        silos.Live.Where(s => s.Metadata.ContainsKey(SiloMetadataKeys.Model(Model))).ToList();

    /// <summary>
    /// Tokens per expert over its replicas, from the live silos' latest reports. A replica that moved
    /// carries its load to its new silo, so while the old silo's last report still lists it, only the
    /// newest report counts.
    /// </summary>
    private Dictionary<(int Layer, int Expert), long> Load()
    {
        var newest = new Dictionary<ExpertKey, (DateTimeOffset Time, long Tokens)>();
        foreach (var report in State.Reports.Values)
        {
            foreach (var (key, tokens) in report.Experts)
            {
                var replica = ExpertKey.Parse(key);
                if (!newest.TryGetValue(replica, out var seen) || seen.Time < report.Time)
                {
                    newest[replica] = (report.Time, tokens);
                }
            }
        }

        var load = new Dictionary<(int, int), long>();
        foreach (var (replica, (_, tokens)) in newest)
        {
            load[(replica.Layer, replica.Expert)] = load.GetValueOrDefault((replica.Layer, replica.Expert)) + tokens;
        }

        return load;
    }

    private MeshPlan Replan(List<SiloInfo> live, Dictionary<(int Layer, int Expert), long> load)
    {
        if (!models.Loaded.TryGetValue(Model, out var model))
        {
            return CurrentPlan();
        }

        var experts = model.MoeLayers
            .SelectMany(l => model.MoeBlock(l).Experts.Select((e, i) => new PlannerExpert(l, i, e.WeightBytes, DeviceExpert.BytesOf(e))))
            .ToList();
        var silos = live.Select(s => new PlannerSilo(
            s.Address,
            s.Metadata.TryGetValue(SiloMetadataKeys.ExpertBudget, out var budget) && long.TryParse(budget, CultureInfo.InvariantCulture, out var b) ? b : long.MaxValue / 4,
            s.Metadata.GetValueOrDefault(SiloMetadataKeys.Gpu) == "true")).ToList();
        var plan = Planner.Compute(CurrentPlan(), experts, load, silos, options.Value.Balancer);
        State.Version = plan.Version;
        State.Experts = plan.Experts.Select(p => new PlannedExpertState { Layer = p.Layer, Expert = p.Expert, Replica = p.Replica, Silo = p.Silo.ToParsableString() }).ToList();
        return plan;
    }
}
