using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.MoE.Runtime.Configuration;
using Orleans.MoE.Runtime.Membership;
using Orleans.MoE.Runtime.Storage;

namespace Orleans.MoE.Runtime.Hosting;

/// <summary>Configures a silo's services.</summary>
public interface ISiloBuilder
{
    IServiceCollection Services { get; }
}

internal sealed class SiloBuilder(IServiceCollection services) : ISiloBuilder
{
    public IServiceCollection Services { get; } = services;
}

/// <summary>Hosting a silo in the usual .NET shape: <c>builder.UseMoESilo(silo => ...)</c>.</summary>
public static class SiloHostingExtensions
{
    /// <summary>
    /// Adds a silo to the host: options bound from the "Silo", "Cluster", "Messaging", "Membership" and
    /// "GrainCollection" configuration sections (so also from environment variables such as
    /// <c>Cluster__ClusterSecret</c>), in-process membership and memory storage unless configured otherwise.
    /// </summary>
    public static IHostApplicationBuilder UseMoESilo(this IHostApplicationBuilder builder, Action<ISiloBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddMoESilo(builder.Configuration, configure);
        builder.Services.AddHostedService<SiloHostedService>();
        return builder;
    }

    /// <summary>The silo's services, without a hosted service (the test cluster starts silos itself).</summary>
    public static IServiceCollection AddMoESilo(this IServiceCollection services, IConfiguration? configuration = null, Action<ISiloBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<ClusterOptions>();
        if (configuration is not null)
        {
            services.Configure<ClusterOptions>(configuration.GetSection("Cluster"));
            services.Configure<SiloOptions>(configuration.GetSection("Silo"));
            services.Configure<MessagingOptions>(configuration.GetSection("Messaging"));
            services.Configure<ClusterMembershipOptions>(configuration.GetSection("Membership"));
            services.Configure<GrainCollectionOptions>(configuration.GetSection("GrainCollection"));
        }

        services.AddOptions<SiloOptions>();
        services.AddOptions<MessagingOptions>();
        services.AddOptions<ClusterMembershipOptions>();
        services.AddOptions<GrainCollectionOptions>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ClusterOptions>, ClusterOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SiloOptions>, SiloOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MessagingOptions>, MessagingOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ClusterMembershipOptions>, MembershipOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<GrainCollectionOptions>, GrainCollectionOptionsValidator>());
        services.AddLogging();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<SiloRuntime>();
        services.TryAddSingleton(sp => new Silo(sp.GetRequiredService<SiloRuntime>(), sp.GetRequiredService<ILogger<Silo>>()));
        services.TryAddSingleton<IGrainFactory>(sp => sp.GetRequiredService<SiloRuntime>().GrainFactory);
        services.TryAddSingleton<Placement.ISiloMetadataPublisher>(sp => sp.GetRequiredService<SiloRuntime>().Membership);
        services.TryAddSingleton<IGrainLocator>(sp => new GrainLocator(sp.GetRequiredService<SiloRuntime>()));
        configure?.Invoke(new SiloBuilder(services));
        services.TryAddSingleton<IMembershipTable, InMemoryMembershipTable>();
        if (!services.Any(d => d.ServiceType == typeof(IGrainStorage) && Equals(d.ServiceKey, PersistentStateAttribute.DefaultStorage)))
        {
            services.AddKeyedSingleton<IGrainStorage, MemoryGrainStorage>(PersistentStateAttribute.DefaultStorage);
        }

        return services;
    }

    public static ISiloBuilder Configure<TOptions>(this ISiloBuilder builder, Action<TOptions> configure)
        where TOptions : class
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.Configure(configure);
        return builder;
    }

    /// <summary>Membership shared by the silos of this process (one host).</summary>
    public static ISiloBuilder UseInMemoryMembership(this ISiloBuilder builder, InMemoryMembershipTable? table = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton<IMembershipTable>(table ?? new InMemoryMembershipTable());
        return builder;
    }

    public static ISiloBuilder AddMemoryGrainStorage(this ISiloBuilder builder, string name = PersistentStateAttribute.DefaultStorage, MemoryGrainStorage? storage = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddKeyedSingleton<IGrainStorage>(name, storage ?? new MemoryGrainStorage());
        return builder;
    }

    public static ISiloBuilder AddDiskGrainStorage(this ISiloBuilder builder, string directory, string name = PersistentStateAttribute.DefaultStorage)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddKeyedSingleton<IGrainStorage>(name, new DiskGrainStorage(directory));
        return builder;
    }

    public static ISiloBuilder AddIncomingGrainCallFilter<TFilter>(this ISiloBuilder builder)
        where TFilter : class, IIncomingGrainCallFilter
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton<IIncomingGrainCallFilter, TFilter>();
        return builder;
    }

    public static ISiloBuilder AddOutgoingGrainCallFilter<TFilter>(this ISiloBuilder builder)
        where TFilter : class, IOutgoingGrainCallFilter
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton<IOutgoingGrainCallFilter, TFilter>();
        return builder;
    }
}

internal sealed class SiloHostedService(Silo silo) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => silo.StartAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => silo.StopAsync(cancellationToken);
}
