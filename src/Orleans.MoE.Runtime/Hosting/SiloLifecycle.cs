namespace Orleans.MoE.Runtime.Hosting;

/// <summary>
/// A silo service with a part in the silo's start and graceful stop (registered in the silo's services
/// as <see cref="ISiloLifecycleParticipant"/>): background work that starts once the silo has joined,
/// and hand-over work that runs while the silo is leaving but still serving.
/// </summary>
public interface ISiloLifecycleParticipant
{
    /// <summary>After the silo joined the cluster. <paramref name="siloStopping"/> fires when it stops or is killed.</summary>
    Task OnSiloStartedAsync(CancellationToken siloStopping);

    /// <summary>
    /// During a graceful stop: the silo is marked shutting down (no new placements come here) and still
    /// serves calls; grains can be moved off now. Runs before the runtime deactivates what remains.
    /// </summary>
    Task OnSiloStoppingAsync(CancellationToken cancellationToken);
}
