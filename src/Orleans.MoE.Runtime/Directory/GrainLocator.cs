namespace Orleans.MoE.Runtime;

/// <summary>
/// Where grains are activated, as this silo's directory sees it. For services that group calls by
/// destination silo (the MoE gates send one request per silo per layer); the call itself still goes
/// through a grain reference, which routes to wherever the activation really is.
/// </summary>
public interface IGrainLocator
{
    /// <summary>The silo of <paramref name="grain"/>'s activation if this silo has it cached and the silo is alive; no network.</summary>
    SiloAddress? CachedLocation(GrainId grain);

    /// <summary>The silo of <paramref name="grain"/>'s activation (asking the directory), or null when it has none.</summary>
    Task<SiloAddress?> LookupAsync(GrainId grain);

    /// <summary>Forgets the cached location (after a call to it failed or found it gone).</summary>
    void Invalidate(GrainId grain);
}

internal sealed class GrainLocator(SiloRuntime runtime) : IGrainLocator
{
    public SiloAddress? CachedLocation(GrainId grain) =>
        runtime.Directory.Cached(grain) is { } address && !runtime.Membership.IsDead(address.Silo) ? address.Silo : null;

    public async Task<SiloAddress?> LookupAsync(GrainId grain)
    {
        var address = await runtime.Directory.LookupAsync(grain).ConfigureAwait(false);
        return address is not null && !runtime.Membership.IsDead(address.Silo) ? address.Silo : null;
    }

    public void Invalidate(GrainId grain) => runtime.Directory.Invalidate(grain);
}
