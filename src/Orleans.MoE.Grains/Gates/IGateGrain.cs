using Orleans.MoE.Grains.Transport;

namespace Orleans.MoE.Grains.Gates;

/// <summary>
/// The gate of one MoE layer (key "model/layer"), a stateless worker on every silo: routes a step's
/// tokens to their experts across the mesh and combines what they return.
/// </summary>
[Alias("moe.IGateGrain")]
public interface IGateGrain : IGrainWithStringKey
{
    /// <summary>The MoE block's output [T, hidden] for the post-attention-normed hidden states [T, hidden].</summary>
    [Alias("Forward")]
    Task<TensorPayload> ForwardAsync(TensorPayload hidden, CancellationToken cancellationToken = default);
}
