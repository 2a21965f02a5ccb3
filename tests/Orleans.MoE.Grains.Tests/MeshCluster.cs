using Microsoft.Extensions.DependencyInjection;
using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Gates;
using Orleans.MoE.Grains.Generation;
using Orleans.MoE.Grains.Hosting;
using Orleans.MoE.Grains.Models;
using Orleans.MoE.Runtime.Hosting;
using Orleans.MoE.Runtime.Storage;
using Orleans.MoE.Runtime.Testing;

namespace Orleans.MoE.Grains.Tests;

/// <summary>A test cluster of silos running the mesh (real TCP on loopback), with quick balancing rounds.</summary>
internal sealed class MeshCluster : IAsyncDisposable
{
    private readonly Action<MeshOptions>? _configure;

    private MeshCluster(TestCluster cluster, Action<MeshOptions>? configure)
    {
        Cluster = cluster;
        _configure = configure;
    }

    public TestCluster Cluster { get; }

    public IReadOnlyList<Silo> Silos => Cluster.Silos;

    public static async Task<MeshCluster> StartAsync(int silos, IReadOnlyDictionary<string, string> models, Action<MeshOptions>? configure = null, IGrainStorage? storage = null)
    {
        void Mesh(MeshOptions o)
        {
            foreach (var (name, path) in models)
            {
                o.Models[name] = path;
            }

            o.Balancer.Interval = TimeSpan.FromMilliseconds(300);
            configure?.Invoke(o);
        }

        var cluster = await TestCluster.StartAsync(0, storage: storage);
        var mesh = new MeshCluster(cluster, Mesh);
        for (var i = 0; i < silos; i++)
        {
            await mesh.AddSiloAsync();
        }

        return mesh;
    }

    /// <summary>One more silo; <paramref name="configure"/> applies after the cluster-wide mesh settings.</summary>
    public Task<Silo> AddSiloAsync(Action<MeshOptions>? configure = null, Action<ISiloBuilder>? silo = null) =>
        Cluster.StartAdditionalSiloAsync(builder =>
        {
            builder.AddMoEMesh(configure: o =>
            {
                _configure?.Invoke(o);
                configure?.Invoke(o);
            });
            silo?.Invoke(builder);
        });

    public static T Service<T>(Silo silo)
        where T : notnull => silo.Services.GetRequiredService<T>();

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

    /// <summary>Expert activations per silo.</summary>
    public Dictionary<Silo, List<ExpertKey>> ExpertsBySilo() => Silos.ToDictionary(s => s, s => Service<LocalExperts>(s).Hosted.ToList());

    /// <summary>The MoE executor of <paramref name="silo"/> for <paramref name="model"/> (forward passes through the gates there).</summary>
    public static MeshMoeExecutor Executor(Silo silo, string model) => new(silo.GrainFactory, model);

    public static MeshModel Model(Silo silo, string name) => Service<MeshModels>(silo).Get(name);

    /// <summary>Greedy generation through a client of the cluster.</summary>
    public async Task<int[]> GenerateAsync(string model, int[] prompt, int tokens, MeshClient? client = null)
    {
        client ??= new MeshClient((await Cluster.ConnectClientAsync()).GrainFactory);
        var result = new List<int>();
        await foreach (var token in client.GenerateAsync(new GenerationRequest(model, prompt, tokens, [])))
        {
            result.Add(token);
        }

        return result.ToArray();
    }

    public ValueTask DisposeAsync() => Cluster.DisposeAsync();
}
