using Orleans.MoE.Grains.Transport;

namespace Orleans.MoE.Grains.Experts;

/// <summary>The rows of one expert (one activation) in a grouped request: <see cref="Count"/> consecutive rows.</summary>
public readonly record struct ExpertSlot(int Expert, int Replica, int Count);

/// <summary>
/// The tokens a gate sends to one silo for one layer in one step: rows [N, hidden] laid out slot after
/// slot, for every expert of the layer that the gate found on that silo.
/// </summary>
public sealed record ExpertBatch(string Model, int Layer, ExpertSlot[] Slots, TensorPayload Rows) : IDisposable
{
    public void Dispose() => Rows.Dispose();
}

/// <summary>
/// The experts' output rows, in the request's layout. <see cref="Missing"/> lists the slots whose expert
/// has no activation on the silo that ran the batch (it moved or was never there): the gate sends them
/// again, and their rows are zero (when every slot is missing, <see cref="Rows"/> has no rows at all).
/// <see cref="ComputeMicroseconds"/> is the experts' own time, for the dispatch-overhead figure.
/// </summary>
public sealed record ExpertBatchResult(TensorPayload Rows, int[] Missing, long ComputeMicroseconds) : IDisposable
{
    public void Dispose() => Rows.Dispose();
}

/// <summary>Runs a batch on the experts this silo hosts (<see cref="LocalExperts"/>); what the data channel calls.</summary>
public interface IExpertBatchExecutor
{
    ValueTask<ExpertBatchResult> ExecuteAsync(ExpertBatch batch);
}
