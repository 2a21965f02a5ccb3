using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.MoE.Grains.Diagnostics;
using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Gates;
using Orleans.MoE.Grains.Generation;
using Orleans.MoE.Grains.Models;
using Orleans.MoE.Grains.Placement;
using Orleans.MoE.Runtime.Hosting;

namespace Orleans.MoE.Grains.Hosting;

/// <summary>Adds the MoE mesh to a silo: <c>silo.AddMoEMesh(configuration)</c>.</summary>
public static class MeshHostingExtensions
{
    /// <summary>
    /// The mesh's services on this silo: the models of "Mesh:Models", expert hosting within the expert
    /// budget, gates, the generation scheduler, expert placement and the balancer. Options come from the
    /// "Mesh" section of <paramref name="configuration"/> (so also from environment variables such as
    /// <c>Mesh__ExpertMemoryBytes</c>), then <paramref name="configure"/>.
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

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MeshOptions>, MeshOptionsValidator>());
        services.TryAddSingleton<MeshModels>();
        services.TryAddSingleton<ExpertLoadMeter>();
        services.TryAddSingleton<LocalExperts>();
        services.TryAddSingleton<MeshPlanView>();
        services.TryAddSingleton<MeshMetrics>();
        services.TryAddSingleton<ExpertDispatcher>();
        services.TryAddSingleton<GenerationScheduler>();
        services.TryAddSingleton<ExpertPlacementDirector>();
        services.TryAddSingleton<ModelSiloPlacementDirector>();
        services.TryAddSingleton<OnNamedSiloPlacementDirector>();
        services.TryAddSingleton<BalancerAgent>();
        services.AddSingleton<ISiloLifecycleParticipant>(sp => sp.GetRequiredService<BalancerAgent>());
        return builder;
    }
}

internal sealed class MeshOptionsValidator : IValidateOptions<MeshOptions>
{
    public ValidateOptionsResult Validate(string? name, MeshOptions options)
    {
        var errors = new List<string>();
        foreach (var model in options.Models.Keys)
        {
            try
            {
                MeshModels.ValidateName(model);
            }
            catch (ArgumentException e)
            {
                errors.Add($"Mesh:Models: {e.Message}");
            }
        }

        if (options.ExpertMemoryBytes < 0)
        {
            errors.Add("Mesh:ExpertMemoryBytes must be ≥ 0 (0: 80 % of available memory)");
        }

        if (options.Device is not ("cpu" or "cuda"))
        {
            errors.Add($"Mesh:Device must be 'cpu' or 'cuda', not '{options.Device}'");
        }

        if (options.Scheduler.MaxBatchSequences <= 0 || options.Scheduler.MaxQueuedSequences <= 0 || options.Scheduler.MaxStepTokens < options.Scheduler.MaxBatchSequences)
        {
            errors.Add("Mesh:Scheduler:MaxBatchSequences and MaxQueuedSequences must be positive, MaxStepTokens at least MaxBatchSequences");
        }

        if (options.Balancer.Interval <= TimeSpan.Zero || options.Balancer.LoadWindow <= TimeSpan.Zero || options.Balancer.ImbalanceThreshold < 1 || options.Balancer.MaxReplicas < 1 || options.Balancer.MaxMovesPerRound < 1)
        {
            errors.Add("Mesh:Balancer: Interval and LoadWindow must be positive, ImbalanceThreshold ≥ 1, MaxReplicas and MaxMovesPerRound ≥ 1");
        }

        if (options.Degraded.Deadline <= TimeSpan.Zero || options.Degraded.MinExperts < 1)
        {
            errors.Add("Mesh:Degraded: Deadline must be positive and MinExperts ≥ 1");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
