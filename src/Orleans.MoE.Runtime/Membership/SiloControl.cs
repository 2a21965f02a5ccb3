using Orleans.MoE.Runtime.Serialization;

namespace Orleans.MoE.Runtime.Membership;

/// <summary>What a silo reports when probed.</summary>
[GenerateSerializer]
public sealed record SiloStatistics(int Activations);

/// <summary>Per-silo control surface: probes, membership gossip, migration.</summary>
public interface ISiloControl : ISystemTarget
{
    Task<SiloStatistics> PingAsync(CancellationToken cancellationToken);

    /// <summary>Indirect probe: can this silo reach <paramref name="target"/>?</summary>
    Task<bool> ProbeAsync(SiloAddress target, CancellationToken cancellationToken);

    /// <summary>Gossip: the membership table changed, read it now.</summary>
    [OneWay]
    Task MembershipChangedAsync();

    Task AcceptMigrationAsync(GrainId grain, Dictionary<string, byte[]> state, ActivationAddress previous);

    /// <summary>Moves this silo's activation of <paramref name="grain"/> to <paramref name="target"/>.</summary>
    Task MigrateAsync(GrainId grain, SiloAddress target);
}

internal sealed class SiloControl(SiloRuntime runtime) : ISiloControl
{
    public Task<SiloStatistics> PingAsync(CancellationToken cancellationToken) => Task.FromResult(new SiloStatistics(runtime.Catalog.Count));

    public async Task<bool> ProbeAsync(SiloAddress target, CancellationToken cancellationToken)
    {
        try
        {
            await runtime.GrainFactory.GetSystemTarget<ISiloControl>(target).PingAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return false;
        }
    }

    public Task MembershipChangedAsync()
    {
        _ = runtime.Membership.RefreshAsync();
        return Task.CompletedTask;
    }

    public Task AcceptMigrationAsync(GrainId grain, Dictionary<string, byte[]> state, ActivationAddress previous) =>
        runtime.Catalog.AcceptMigrationAsync(grain, state, previous);

    public Task MigrateAsync(GrainId grain, SiloAddress target) => runtime.Catalog.MigrateAsync(grain, target);
}
