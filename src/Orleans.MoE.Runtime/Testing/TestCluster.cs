using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.MoE.Runtime.Client;
using Orleans.MoE.Runtime.Configuration;
using Orleans.MoE.Runtime.Hosting;
using Orleans.MoE.Runtime.Membership;
using Orleans.MoE.Runtime.Storage;

namespace Orleans.MoE.Runtime.Testing;

/// <summary>
/// Several silos in one process, as Orleans' TestCluster: each silo has its own service container and
/// talks to the others over real TCP on loopback; they share a membership table and grain storage (as
/// separate machines would share a database). Silos can be added, stopped gracefully, killed and restarted.
/// </summary>
public sealed class TestCluster : IAsyncDisposable
{
    private readonly List<(Silo Silo, ServiceProvider Services)> _silos = [];
    private readonly Action<ISiloBuilder>? _configure;
    private readonly List<ClusterClient> _clients = [];

    private TestCluster(Action<ISiloBuilder>? configure, IMembershipTable table, IGrainStorage storage)
    {
        _configure = configure;
        MembershipTable = table;
        Storage = storage;
    }

    /// <summary>The cluster's secret (each test cluster gets its own).</summary>
    public string ClusterSecret { get; } = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));

    public string ClusterId { get; } = "test-" + Guid.NewGuid().ToString("N")[..8];

    public IMembershipTable MembershipTable { get; }

    public IGrainStorage Storage { get; }

    /// <summary>The silos started and not stopped or killed.</summary>
    public IReadOnlyList<Silo> Silos => _silos.Select(s => s.Silo).Where(s => s.IsRunning).ToList();

    public Silo Primary => Silos[0];

    public IGrainFactory GrainFactory => Primary.GrainFactory;

    /// <summary>Starts <paramref name="silos"/> silos. <paramref name="configure"/> applies to every silo.</summary>
    public static async Task<TestCluster> StartAsync(int silos = 2, Action<ISiloBuilder>? configure = null, IMembershipTable? membership = null, IGrainStorage? storage = null)
    {
        var cluster = new TestCluster(configure, membership ?? new InMemoryMembershipTable(), storage ?? new MemoryGrainStorage());
        for (var i = 0; i < silos; i++)
        {
            await cluster.StartAdditionalSiloAsync().ConfigureAwait(false);
        }

        return cluster;
    }

    /// <summary>Starts one more silo; by default waits until every silo sees it.</summary>
    public async Task<Silo> StartAdditionalSiloAsync(Action<ISiloBuilder>? configure = null, bool waitForConvergence = true)
    {
        var services = new ServiceCollection();
        // Logs go to standard error, so a program hosting a test cluster (moe bench) keeps its output clean.
        services.AddLogging(logging => logging.SetMinimumLevel(Environment.GetEnvironmentVariable("MOE_TEST_LOG") == "1" ? LogLevel.Debug : LogLevel.Warning)
            .AddSimpleConsole().AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace));
        services.AddSingleton(MembershipTable);
        services.AddKeyedSingleton(PersistentStateAttribute.DefaultStorage, Storage);
        services.AddMoESilo(configure: silo =>
        {
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = ClusterId;
                o.ClusterSecret = ClusterSecret;
            });
            silo.Configure<ClusterMembershipOptions>(o =>
            {
                o.TableRefreshInterval = TimeSpan.FromMilliseconds(250);
                o.IAmAliveInterval = TimeSpan.FromSeconds(1);
            });
            _configure?.Invoke(silo);
            configure?.Invoke(silo);
        });
        var provider = services.BuildServiceProvider();
        var silo = provider.GetRequiredService<Silo>();
        await silo.StartAsync(CancellationToken.None).ConfigureAwait(false);
        _silos.Add((silo, provider));
        if (waitForConvergence)
        {
            await WaitForConvergenceAsync().ConfigureAwait(false);
        }

        return silo;
    }

    /// <summary>Graceful stop: grains migrate or deactivate first, the silo leaves the table.</summary>
    public async Task StopSiloAsync(Silo silo)
    {
        ArgumentNullException.ThrowIfNull(silo);
        await silo.StopAsync().ConfigureAwait(false);
        await WaitForConvergenceAsync().ConfigureAwait(false);
    }

    /// <summary>Crash: the silo vanishes without a word; the others must detect it.</summary>
    public void KillSilo(Silo silo)
    {
        ArgumentNullException.ThrowIfNull(silo);
        if (!_silos.Any(s => s.Silo == silo))
        {
            throw new ArgumentException($"{silo.Address} is not a silo of this cluster", nameof(silo));
        }

        silo.Kill();
    }

    /// <summary>
    /// Restarts a silo on the same endpoint: a new incarnation (generation), so the cluster treats it as
    /// a new silo and never routes to the old one's activations. A running silo is stopped gracefully first.
    /// </summary>
    public async Task<Silo> RestartSiloAsync(Silo silo)
    {
        ArgumentNullException.ThrowIfNull(silo);
        if (silo.IsRunning)
        {
            await StopSiloAsync(silo).ConfigureAwait(false);
        }

        return await StartAdditionalSiloAsync(s => s.Configure<SiloOptions>(o => o.Port = silo.Address.Port)).ConfigureAwait(false);
    }

    /// <summary>Waits until every running silo sees the same set of active silos (all running ones).</summary>
    public async Task WaitForConvergenceAsync(TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (DateTime.UtcNow < deadline)
        {
            var running = Silos.Select(s => s.Address).ToHashSet();
            if (Silos.All(s => s.ActiveSilos.ToHashSet().SetEquals(running)))
            {
                return;
            }

            await Task.Delay(50).ConfigureAwait(false);
        }

        throw new TimeoutException("the silos did not agree on membership in time");
    }

    /// <summary>A client connected through the cluster's silos as gateways.</summary>
    public async Task<ClusterClient> ConnectClientAsync(Action<ClusterClientOptions>? configure = null)
    {
        var options = new ClusterClientOptions
        {
            ClusterId = ClusterId,
            ClusterSecret = ClusterSecret,
            MembershipTable = MembershipTable,
        };
        configure?.Invoke(options);
        var client = new ClusterClient(options);
        await client.ConnectAsync().ConfigureAwait(false);
        _clients.Add(client);
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            await client.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var (silo, services) in _silos)
        {
            if (silo.IsRunning)
            {
                silo.Kill();
            }

            await services.DisposeAsync().ConfigureAwait(false);
        }
    }
}
