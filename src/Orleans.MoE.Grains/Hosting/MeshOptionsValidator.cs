using Microsoft.Extensions.Options;
using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Grains.Catalog;

namespace Orleans.MoE.Grains.Hosting;

/// <summary>Checks the "Mesh" section once, at start, so a bad setting ends the silo with one clear line.</summary>
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

        try
        {
            DeviceKinds.Parse(options.Device);
        }
        catch (FormatException e)
        {
            errors.Add($"Mesh:Device: {e.Message}");
        }

        try
        {
            GpuPrecisions.Parse(options.DevicePrecision);
        }
        catch (FormatException e)
        {
            errors.Add($"Mesh:DevicePrecision: {e.Message}");
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
