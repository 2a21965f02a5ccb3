using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Dashboard;
using Orleans.MoE.Grains.Catalog;
using Orleans.MoE.Grains.Cluster;
using Orleans.MoE.Grains.Diagnostics;
using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Gates;
using Orleans.MoE.Grains.Generation;
using Orleans.MoE.Grains.Placement;
using Orleans.MoE.Grains.Transport;

namespace Orleans.MoE.Grains.Hosting;

/// <summary>Adds the MoE mesh to an Orleans silo: <c>silo.AddMoEMesh(configuration)</c>.</summary>
public static class MeshHostingExtensions
{
    /// <summary>
    /// The mesh's services on this silo: the models of "Mesh:Models", expert hosting within the expert
    /// budget (on the device of "Mesh:Device" when it gives one), the data channel that carries expert batches between silos, gates, the generation scheduler,
    /// expert placement and the balancer, and failure detection tuned for a LAN (<see cref="UseLanFailureDetection"/>). Options come from the "Mesh" section of
    /// <paramref name="configuration"/> (so also from environment variables such as
    /// <c>Mesh__ExpertMemoryBytes</c>), then <paramref name="configure"/>. The plan is kept in the grain
    /// storage named <see cref="MeshStorage.Name"/>, which the host registers. With a "Tls" section
    /// (<see cref="MeshTls"/>), silos and clients must present certificates from the cluster's CA. Grain
    /// calls carry the caller's trace (Orleans' activity propagation); what the silo exports is the host's
    /// choice (<see cref="MeshTelemetryHosting.AddMeshTelemetry"/>).
    /// </summary>
    public static ISiloBuilder AddMoEMesh(this ISiloBuilder builder, IConfiguration? configuration = null, Action<MeshOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        var options = services.AddOptions<MeshOptions>();
        if (configuration is not null)
        {
            options.Bind(configuration.GetSection("Mesh"));
        }

        if (configure is not null)
        {
            options.Configure(configure);
        }

        builder.UseLanFailureDetection();
        if (configuration is not null)
        {
            // Orleans' own options from the same file and environment: Membership__ProbeTimeout, Messaging__MaxMessageBodySize, ...
            services.Configure<ClusterMembershipOptions>(configuration.GetSection("Membership"));
            services.Configure<SiloMessagingOptions>(configuration.GetSection("Messaging"));
        }

        if (configuration is not null && MeshTls.FromConfiguration(configuration) is { } tls)
        {
            var (certificate, authority) = tls.Load();
            builder.UseMeshTls(certificate, authority);
        }

        services.TryAddSingleton(DataChannelSecurity.None); // UseMeshTls registers the certificates' one

        builder.AddDashboard(); // Orleans' own dashboard data, for the front end's /orleans page
        builder.AddActivityPropagation();
        services.AddMetrics();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MeshOptions>, MeshOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<MeshSilos>();
        services.TryAddSingleton<ISiloMetadataPublisher>(sp => sp.GetRequiredService<MeshSilos>());
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<MeshSilos>());
        services.TryAddSingleton<MeshModels>();
        services.TryAddSingleton<ExpertLoadMeter>();
        services.TryAddSingleton<ExpertDevice>();
        services.TryAddSingleton<LocalExperts>();
        services.TryAddSingleton<IExpertBatchExecutor>(sp => sp.GetRequiredService<LocalExperts>());
        services.TryAddSingleton<DataChannelServer>();
        services.TryAddSingleton<DataChannelHost>();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<DataChannelHost>());
        services.TryAddSingleton<DataChannelClient>();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<DataChannelClient>());
        services.TryAddSingleton<MeshPlanView>();
        services.TryAddSingleton<ExpertLocations>();
        services.TryAddSingleton<MeshMetrics>();
        services.TryAddSingleton<ExpertDispatcher>();
        services.TryAddSingleton<GenerationScheduler>();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<GenerationScheduler>());
        services.AddPlacementDirector<ExpertPlacementStrategy, ExpertPlacementDirector>();
        services.AddPlacementDirector<ModelSiloPlacementStrategy, ModelSiloPlacementDirector>();
        services.AddPlacementDirector<OnNamedSiloPlacementStrategy, OnNamedSiloPlacementDirector>();
        services.TryAddSingleton<BalancerAgent>();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<BalancerAgent>());
        return builder;
    }

    /// <summary>
    /// Orleans' membership tuned for silos on one LAN: a silo is probed every second and suspected after
    /// two missed probes, the adaptive probe timeout is capped at one second (Orleans lets it grow to four
    /// times the probe timeout, which is what makes a hung silo take a minute to be declared dead), and the
    /// membership table is read every second. Measured on a 2-core machine: a killed silo is declared dead
    /// in about 1-2 s, a hung (SIGSTOPped) one in about 2-3 s; Orleans' defaults, made for wider networks,
    /// take 10-19 s and about 60 s. The cost: one small probe message a second between silo pairs and one
    /// table read a second per silo, and a silo that stalls for over two seconds (a long GC pause) is
    /// declared dead and restarts.
    /// </summary>
    public static ISiloBuilder UseLanFailureDetection(this ISiloBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.Configure<ClusterMembershipOptions>(o =>
        {
            o.ProbeTimeout = TimeSpan.FromSeconds(1);
            o.MaxProbeTimeout = TimeSpan.FromSeconds(1);
            o.NumMissedProbesLimit = 2;
            o.TableRefreshTimeout = TimeSpan.FromSeconds(1);
        });
        return builder;
    }
}
