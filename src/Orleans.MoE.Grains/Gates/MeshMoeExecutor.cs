using Orleans.MoE.Grains.Transport;
using Orleans.MoE.Models.Layers;

namespace Orleans.MoE.Grains.Gates;

/// <summary>Runs a model's sparse MoE blocks on the mesh: each layer's block through that layer's gate grain on this silo.</summary>
public sealed class MeshMoeExecutor(IGrainFactory grains, string model) : IMoeExecutor
{
    public async ValueTask ForwardAsync(int layer, SparseMoeBlock block, float[] x, int tokens, float[] output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(block);
        ArgumentNullException.ThrowIfNull(x);
        var width = block.Router.InFeatures;
        var gate = grains.GetGrain<IGateGrain>($"{model}/{layer}");
        using var result = await gate.ForwardAsync(TensorPayload.Over(x, 0, tokens, width), cancellationToken).ConfigureAwait(false);
        result.Values.CopyTo(output);
    }
}
