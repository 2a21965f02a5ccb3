using Orleans.MoE.Grains.Transport;

namespace Orleans.MoE.Grains.Experts;

/// <summary>The rows of one expert (one activation) in a grouped request: <see cref="Count"/> consecutive rows.</summary>
[GenerateSerializer]
[Alias("moe.ExpertSlot")]
public readonly record struct ExpertSlot(int Expert, int Replica, int Count);

/// <summary>
/// The tokens a gate sends to one silo for one layer in one step: rows [N, hidden] laid out slot after
/// slot, for every expert of the layer that the gate found on that silo.
/// </summary>
[GenerateSerializer]
[Immutable]
[Alias("moe.ExpertBatch")]
public sealed record ExpertBatch(string Model, int Layer, ExpertSlot[] Slots, TensorPayload Rows);

/// <summary>
/// The experts' output rows, in the request's layout, computed on <see cref="Silo"/>. <see cref="Missing"/>
/// lists the slots whose expert has no activation on that silo (it moved or was never there): their rows
/// are zero and the gate sends them again. <see cref="ComputeMicroseconds"/> is the experts' own time,
/// for the dispatch-overhead figure.
/// </summary>
[GenerateSerializer]
[Immutable]
[Alias("moe.ExpertBatchResult")]
public sealed record ExpertBatchResult(TensorPayload Rows, int[] Missing, long ComputeMicroseconds, SiloAddress Silo) : IDisposable
{
    public void Dispose() => Rows.Dispose();
}

/// <summary>Where an expert activation lives and what it holds.</summary>
[GenerateSerializer]
[Alias("moe.ExpertInfo")]
public sealed record ExpertInfo(string Key, SiloAddress Silo, long WeightBytes);

/// <summary>
/// One expert of one MoE layer (key: <see cref="ExpertKey"/>). Its activation maps the expert's weights
/// from the silo's copy of the checkpoint and holds them until it is moved or its silo goes away.
/// </summary>
[Alias("moe.IExpertGrain")]
public interface IExpertGrain : IGrainWithStringKey
{
    /// <summary>
    /// Runs the batch's experts that live on this silo as one grouped computation (this activation and its
    /// co-located peers of the same layer); the request is addressed to one of them.
    /// </summary>
    [Alias("Execute")]
    Task<ExpertBatchResult> ExecuteAsync(ExpertBatch batch, CancellationToken cancellationToken = default);

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
