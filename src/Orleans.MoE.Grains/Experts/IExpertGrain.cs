namespace Orleans.MoE.Grains.Experts;

/// <summary>Where an expert activation lives (its silo, and that silo's data channel endpoint) and what it holds.</summary>
[GenerateSerializer]
[Alias("moe.ExpertInfo")]
public sealed record ExpertInfo(string Key, SiloAddress Silo, long WeightBytes, string DataEndpoint);

/// <summary>
/// One expert of one MoE layer (key: <see cref="ExpertKey"/>). Its activation maps the expert's weights
/// from the silo's copy of the checkpoint and holds them until it is moved or its silo goes away. Grain
/// calls are the control plane (activate, locate, move, retire); the tokens themselves travel on the
/// silos' data channel (<see cref="Transport.DataChannelServer"/>) to the silo the activation lives on.
/// </summary>
[Alias("moe.IExpertGrain")]
public interface IExpertGrain : IGrainWithStringKey
{
    /// <summary>Activates the expert if needed and says where it lives.</summary>
    [Alias("Describe")]
    Task<ExpertInfo> DescribeAsync();

    /// <summary>Moves this activation to <paramref name="target"/> (Orleans migration, the target as placement hint) once idle.</summary>
    [Alias("Move")]
    Task MoveAsync(SiloAddress target);

    /// <summary>Deactivates this replica (the plan no longer has it); its weights leave the silo's budget.</summary>
    [Alias("Retire")]
    Task RetireAsync();
}
