namespace Orleans.MoE.Runtime;

/// <summary>
/// Base class of grain implementations: identity, the grain factory, lifecycle hooks and requests to
/// deactivate or migrate. Built by dependency injection; one activation runs one turn at a time.
/// </summary>
public abstract class Grain
{
    private ActivationData? _activation;

    /// <summary>This grain's identity.</summary>
    public GrainId GrainId => Activation.GrainId;

    /// <summary>Creates references to other grains.</summary>
    public IGrainFactory GrainFactory => Activation.Runtime.GrainFactory;

    /// <summary>The silo this activation lives on.</summary>
    public SiloAddress Silo => Activation.Runtime.SiloAddress;

    internal ActivationData Activation => _activation ?? throw new InvalidOperationException("the grain is not activated yet (constructors cannot use the runtime)");

    /// <summary>Called before the first request is delivered.</summary>
    public virtual Task OnActivateAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Called before the activation is dropped.</summary>
    public virtual Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Deactivate once the current request completes.</summary>
    protected void DeactivateOnIdle() => Activation.RequestDeactivation(DeactivationReason.Requested);

    /// <summary>Keeps the activation from idle collection for at least this long.</summary>
    protected void DelayDeactivation(TimeSpan duration) => Activation.DelayCollection(duration);

    /// <summary>The string key of an <see cref="IGrainWithStringKey"/> grain.</summary>
    public string GetPrimaryKeyString() => GrainId.Key;

    public long GetPrimaryKeyLong() => long.Parse(GrainId.Key.Split('+')[0], System.Globalization.CultureInfo.InvariantCulture);

    public Guid GetPrimaryKey() => Guid.ParseExact(GrainId.Key, "N");

    /// <summary>The extension of an <see cref="IGrainWithIntegerCompoundKey"/> grain's key.</summary>
    public string? GetKeyExtension() => GrainId.Key.Split('+', 2) is [_, var extension] ? extension : null;

    internal void Attach(ActivationData activation) => _activation = activation;
}

/// <summary>Hands an activation's state over when it migrates to another silo.</summary>
public interface IGrainMigrationParticipant
{
    /// <summary>Called on the old silo: write what the new activation needs.</summary>
    void OnDehydrate(IDictionary<string, byte[]> state);

    /// <summary>Called on the new silo before OnActivateAsync.</summary>
    void OnRehydrate(IReadOnlyDictionary<string, byte[]> state);
}
