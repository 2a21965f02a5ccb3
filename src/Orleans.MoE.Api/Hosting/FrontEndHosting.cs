using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Orleans.MoE.Api.Dashboard;
using Orleans.MoE.Api.Operations;
using Orleans.MoE.Api.Protection;
using Orleans.MoE.Api.Serving;
using Orleans.MoE.Grains.Hosting;
using Orleans.MoE.Runtime.Client;
using Orleans.MoE.Runtime.Hosting;

namespace Orleans.MoE.Api.Hosting;

/// <summary>
/// Builds the front end into an ASP.NET Core application: <c>AddMoEApi</c> for its services, then either
/// <c>AddEmbeddedMesh</c> (a silo in this process: the one-process default) or <c>AddMeshClient</c> (the
/// runtime's client to a running cluster), then <c>app.MapMoEApi()</c>.
/// </summary>
public static class FrontEndHosting
{
    /// <summary>The front end's services; options from the "Api" section of <paramref name="configuration"/>, then <paramref name="configure"/>.</summary>
    public static IServiceCollection AddMoEApi(this IServiceCollection services, IConfiguration? configuration = null, Action<ApiOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<ApiOptions>();
        if (configuration is not null)
        {
            options.Bind(configuration.GetSection("Api"));
        }

        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ApiOptions>, ApiOptionsValidator>());
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<ApiOptions>>((kestrel, api) => kestrel.Limits.MaxRequestBodySize = api.Value.MaxRequestBodyBytes);
        services.TryAddSingleton<ApiMetrics>();
        services.TryAddSingleton<ApiKeys>();
        services.TryAddSingleton<ConcurrencyLimits>();
        services.TryAddSingleton<ModelCatalog>();
        services.TryAddSingleton<CompletionService>();
        services.TryAddSingleton<MeshSnapshots>();
        services.TryAddSingleton<SiloNames>();
        return services;
    }

    /// <summary>
    /// A silo in this process serving <paramref name="models"/> (name → directory), with in-process
    /// membership and memory storage; settings from the "Silo", "Cluster" and "Mesh" sections as for
    /// <c>moe-silo</c>. Without a configured cluster secret, a random one is used.
    /// </summary>
    public static WebApplicationBuilder AddEmbeddedMesh(this WebApplicationBuilder builder, IReadOnlyDictionary<string, string> models, Action<MeshOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(models);
        if (string.IsNullOrEmpty(builder.Configuration["Cluster:ClusterSecret"]))
        {
            builder.Configuration["Cluster:ClusterSecret"] = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
        }

        builder.UseMoESilo(silo =>
        {
            silo.UseInMemoryMembership();
            silo.AddMemoryGrainStorage();
            silo.AddMoEMesh(builder.Configuration, mesh =>
            {
                foreach (var (name, directory) in models)
                {
                    mesh.Models[name] = directory;
                }

                configure?.Invoke(mesh);
            });
        });
        return builder;
    }

    /// <summary>The runtime's client to a running cluster (connected when the application starts, closed when it stops).</summary>
    public static WebApplicationBuilder AddMeshClient(this WebApplicationBuilder builder, ClusterClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var client = new ClusterClient(options);
        builder.Services.AddSingleton(client);
        builder.Services.AddSingleton(client.GrainFactory);
        builder.Services.AddHostedService(_ => new ClientConnection(client));
        return builder;
    }

    private sealed class ClientConnection(ClusterClient client) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => client.ConnectAsync(cancellationToken);

        public async Task StopAsync(CancellationToken cancellationToken) => await client.DisposeAsync().ConfigureAwait(false);
    }
}
