using Microsoft.Extensions.DependencyInjection;
using Orleans.MoE.Grains;
using Orleans.MoE.Grains.Catalog;
using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Gates;
using Orleans.MoE.Grains.Generation;
using Orleans.MoE.Grains.Hosting;
using Orleans.MoE.Grains.Placement;
using Orleans.TestingHost;
using Xunit;

namespace Orleans.MoE.Testing;

/// <summary>
/// The mesh on an Orleans test cluster (<see cref="InProcessTestCluster"/>: silos in this process, every
/// message serialized, over TestingHost's in-memory transport), with quick balancing rounds. Silos are
/// added one by one so a test can give one of them its own settings. A caller on a given silo (whose
/// sequences that silo schedules) uses that silo's <see cref="GrainFactory"/>; <see cref="Client"/> is a
/// client through every silo's gateway.
/// </summary>
public sealed class MeshCluster : IAsyncDisposable
{
    private readonly Action<MeshOptions> _mesh;
    private readonly SharedGrainStorage _storage = new();
    private readonly Action<ISiloBuilder>? _silo;
    private (Action<MeshOptions>? Mesh, Action<ISiloBuilder>? Silo) _next;

    private MeshCluster(Action<MeshOptions> mesh, Action<ISiloBuilder>? silo)
    {
        _mesh = mesh;
        _silo = silo;
        var builder = new InProcessTestClusterBuilder(0);
        builder.Options.InitializeClientOnDeploy = false;
        builder.ConfigureSilo((_, silo) => Configure(silo));
        builder.ConfigureClient(client => client.AddActivityPropagation()); // as every mesh client does (MeshClientHosting)
        Cluster = builder.Build();
    }

    public InProcessTestCluster Cluster { get; }

    public IReadOnlyList<InProcessSiloHandle> Silos => Cluster.Silos;

    /// <summary>A client of the cluster (through every silo's gateway), connected when the first silo started.</summary>
    public IClusterClient Client => Cluster.Client;

    /// <summary>
    /// Starts <paramref name="silos"/> silos serving <paramref name="models"/>; <paramref name="silo"/> adds
    /// to every silo (a grain storage named <see cref="MeshStorage.Name"/>, else the cluster's own
    /// <see cref="SharedGrainStorage"/>, which, like a database, outlives any one silo).
    /// </summary>
    public static async Task<MeshCluster> StartAsync(int silos, IReadOnlyDictionary<string, string> models, Action<MeshOptions>? configure = null, Action<ISiloBuilder>? silo = null)
    {
        ArgumentNullException.ThrowIfNull(models);
        var cluster = new MeshCluster(
            o =>
            {
                foreach (var (name, path) in models)
                {
                    o.Models[name] = path;
                }

                o.Balancer.Interval = TimeSpan.FromMilliseconds(300);
                configure?.Invoke(o);
            },
            silo);
        await cluster.Cluster.DeployAsync();
        for (var i = 0; i < silos; i++)
        {
            await cluster.AddSiloAsync();
        }

        return cluster;
    }

    /// <summary>One more silo; <paramref name="configure"/> applies after the cluster-wide mesh settings, <paramref name="silo"/> after the cluster-wide silo settings.</summary>
    public async Task<InProcessSiloHandle> AddSiloAsync(Action<MeshOptions>? configure = null, Action<ISiloBuilder>? silo = null)
    {
        _next = (configure, silo);
        try
        {
            var added = await Cluster.StartAdditionalSiloAsync();
            if (Cluster.Silos.Count == 1)
            {
                await Cluster.InitializeClientAsync();
            }

            return added;
        }
        finally
        {
            _next = default;
        }
    }

    public static T Service<T>(InProcessSiloHandle silo)
        where T : notnull
    {
        ArgumentNullException.ThrowIfNull(silo);
        return silo.ServiceProvider.GetRequiredService<T>();
    }

    /// <summary>The grain factory of <paramref name="silo"/> (calls made from inside the cluster, on that silo).</summary>
    public static IGrainFactory GrainFactory(InProcessSiloHandle silo) => Service<IGrainFactory>(silo);

    /// <summary>Waits until every expert of <paramref name="model"/> has an activation (the balancer warms the plan up).</summary>
    public async Task WaitForAllExpertsAsync(string model, double seconds = 20)
    {
        var network = Model(Silos[0], model);
        var total = network.MoeLayers.Sum(l => network.MoeBlock(l).ExpertCount);
        Assert.True(await Eventually.TrueAsync(() => ExpertsBySilo().Values.Sum(v => v.Count(k => k.Model == model)) >= total, seconds),
            $"all {total} experts of {model} active: {string.Join(", ", ExpertsBySilo().Select(s => s.Value.Count))}");
    }

    /// <summary>Waits until every expert is active and every silo hosts some (the balancer has spread them).</summary>
    public async Task WaitForSpreadAsync(string model, double seconds = 20)
    {
        await WaitForAllExpertsAsync(model, seconds);
        Assert.True(await Eventually.TrueAsync(() => ExpertsBySilo().Values.All(v => v.Count > 0), seconds),
            $"every silo hosts experts: {string.Join(", ", ExpertsBySilo().Select(s => s.Value.Count))}");
    }

    /// <summary>Waits until every expert of the plan is active where the plan puts it, and nothing else is (the balancer's moves are done).</summary>
    public async Task WaitForSettledAsync(string model, double seconds = 20)
    {
        var plan = Client.GetGrain<IMeshPlanGrain>(model);
        async Task<bool> Settled()
        {
            var planned = (await plan.GetPlanAsync()).Experts.Select(p => (p.Layer, p.Expert, p.Replica, p.Silo)).ToHashSet();
            var hosted = ExpertsBySilo().SelectMany(s => s.Value.Where(k => k.Model == model).Select(k => (k.Layer, k.Expert, k.Replica, s.Key.SiloAddress))).ToList();
            return planned.Count > 0 && hosted.Count == planned.Count && hosted.All(planned.Contains);
        }

        Assert.True(await Eventually.TrueAsync(Settled, seconds), $"the experts of {model} are where the plan puts them");
    }

    /// <summary>Expert activations per silo.</summary>
    public Dictionary<InProcessSiloHandle, List<ExpertKey>> ExpertsBySilo() => Silos.ToDictionary(s => s, s => Service<LocalExperts>(s).Hosted.ToList());

    /// <summary>The MoE executor of <paramref name="silo"/> for <paramref name="model"/> (forward passes through the gates there).</summary>
    public static MeshMoeExecutor Executor(InProcessSiloHandle silo, string model) => new(GrainFactory(silo), model);

    public static MeshModel Model(InProcessSiloHandle silo, string name) => Service<MeshModels>(silo).Get(name);

    /// <summary>Greedy generation through the cluster's client.</summary>
    public async Task<int[]> GenerateAsync(string model, int[] prompt, int tokens, MeshClient? client = null)
    {
        client ??= new MeshClient(Client);
        var result = new List<int>();
        await foreach (var token in client.GenerateAsync(new GenerationRequest(model, prompt, tokens, [])))
        {
            result.Add(token.Id);
        }

        return result.ToArray();
    }

    public async ValueTask DisposeAsync() => await Cluster.DisposeAsync();

    private void Configure(ISiloBuilder silo)
    {
        var (mesh, extra) = _next;
        _silo?.Invoke(silo);
        extra?.Invoke(silo);
        if (!silo.Services.Any(s => s.IsKeyedService && Equals(s.ServiceKey, MeshStorage.Name)))
        {
            _storage.AddTo(silo);
        }

        silo.AddMoEMesh(configure: o =>
        {
            _mesh(o);
            mesh?.Invoke(o);
        });
    }
}
