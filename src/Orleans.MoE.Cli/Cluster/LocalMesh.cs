using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.MoE.Grains;
using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Hosting;

namespace Orleans.MoE.Cli.Cluster;

/// <summary>
/// Several Orleans silos in this process, each with its own host and ports, talking over loopback TCP
/// as silos on separate machines do (localhost clustering, the first silo keeping membership; plan in
/// memory). <c>moe verify --silos N</c> and the benchmarks spread a model's experts over them.
/// </summary>
internal sealed class LocalMesh : IAsyncDisposable
{
    private readonly List<IHost> _silos = [];
    private readonly string _clusterId = "local-" + Guid.NewGuid().ToString("N")[..8];

    private LocalMesh()
    {
    }

    /// <summary>The cluster's id (unique to this mesh).</summary>
    public string ClusterId => _clusterId;

    /// <summary>Starts <paramref name="silos"/> silos serving <paramref name="models"/> (name → directory; none: a plain Orleans cluster).</summary>
    public static async Task<LocalMesh> StartAsync(int silos, IReadOnlyDictionary<string, string> models, Action<MeshOptions>? configure = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(silos);
        var mesh = new LocalMesh();
        try
        {
            IPEndPoint? primary = null;
            for (var i = 0; i < silos; i++)
            {
                var siloPort = MeshSiloHosting.FreePort();
                var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
                // Warnings only, on stderr: stdout carries the command's own output (JSON with --json).
                builder.Logging.SetMinimumLevel(LogLevel.Warning).AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
                builder.Logging.AddFilter("Orleans", LogLevel.Error).AddFilter("Polly", LogLevel.Error);
                builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
                {
                    ["Cluster:ClusterId"] = mesh._clusterId,
                    ["Silo:Port"] = siloPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                });
                var first = primary;
                builder.UseOrleans(silo =>
                {
                    silo.UseLocalCluster(builder.Configuration, first);
                    silo.AddMemoryGrainStorage(MeshStorage.Name);
                    silo.AddMoEMesh(configure: o =>
                    {
                        foreach (var (name, directory) in models)
                        {
                            o.Models[name] = directory;
                        }

                        configure?.Invoke(o);
                    });
                });
                var host = builder.Build();
                mesh._silos.Add(host);
                await host.StartAsync(cancellationToken);
                primary ??= new IPEndPoint(IPAddress.Loopback, siloPort);
            }
        }
        catch
        {
            await mesh.DisposeAsync();
            throw;
        }

        return mesh;
    }

    /// <summary>The gateway endpoint of silo <paramref name="index"/>.</summary>
    public IPEndPoint Gateway(int index) => _silos[index].Services.GetRequiredService<ILocalSiloDetails>().GatewayAddress.Endpoint;

    /// <summary>The grain factory of silo <paramref name="index"/> (calls made from inside the cluster).</summary>
    public IGrainFactory GrainFactory(int index) => _silos[index].Services.GetRequiredService<IGrainFactory>();

    /// <summary>An Orleans client connected through the gateways of <paramref name="silos"/> (default: every silo).</summary>
    public Task<MeshConnection> ConnectAsync(IEnumerable<int>? silos = null, CancellationToken cancellationToken = default) =>
        MeshConnection.ConnectAsync((silos ?? Enumerable.Range(0, _silos.Count)).Select(Gateway).ToList(), _clusterId, cancellationToken: cancellationToken);

    /// <summary>
    /// Waits until every expert of the served models is active somewhere (the balancer warms the plan up)
    /// and, with <paramref name="spread"/>, every silo hosts some; false after <paramref name="timeout"/>.
    /// </summary>
    public async Task<bool> WaitForExpertsAsync(int experts, TimeSpan timeout, bool spread = false, CancellationToken cancellationToken = default)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var hosted = _silos.Select(s => s.Services.GetRequiredService<LocalExperts>().Hosted.Count).ToList();
            if (hosted.Sum() >= experts && (!spread || hosted.All(h => h > 0)))
            {
                return true;
            }

            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    /// <summary>A service of silo <paramref name="index"/>.</summary>
    public T Service<T>(int index)
        where T : notnull => _silos[index].Services.GetRequiredService<T>();

    public async ValueTask DisposeAsync()
    {
        // The primary keeps membership: it goes last.
        foreach (var host in Enumerable.Reverse(_silos))
        {
            try
            {
                await host.StopAsync(TimeSpan.FromSeconds(10));
            }
            finally
            {
                host.Dispose();
            }
        }
    }
}
