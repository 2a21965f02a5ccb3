using Microsoft.Extensions.Options;
using Orleans.MoE.Grains.Catalog;
using Orleans.MoE.Grains.Transport;
using Orleans.MoE.Models.Layers;

namespace Orleans.MoE.Grains.Gates;

/// <summary>
/// A layer's gate on this silo (a stateless worker, so every silo routes locally and nothing is central):
/// the router and the architecture's routing rule from the silo's copy of the model, tokens grouped by
/// expert, the experts run through <see cref="ExpertDispatcher"/> (one request per destination silo),
/// results combined with the routing weights in expert order (so the sums match the single-process
/// forward exactly), plus the shared expert(s).
/// </summary>
[StatelessWorker]
[Reentrant]
public sealed class GateGrain(MeshModels models, ExpertDispatcher dispatcher, IOptions<MeshOptions> options) : Grain, IGateGrain
{
    public async Task<TensorPayload> ForwardAsync(TensorPayload hidden, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        var (model, layer) = ParseKey(this.GetPrimaryKeyString());
        var block = models.Get(model).MoeBlock(layer);
        var width = block.Router.InFeatures;
        float[] x;
        using (hidden)
        {
            if (hidden.Columns != width)
            {
                throw new ArgumentException($"gate {model}/{layer} takes [tokens, {width}] f32 rows, not {hidden}", nameof(hidden));
            }

            x = hidden.Values.ToArray();
        }

        var tokens = x.Length / width;
        var routing = block.Route(x, tokens);
        var byExpert = routing.ByExpert(block.ExpertCount);
        var (input, experts) = SparseMoeBlock.GatherByExpert(x, byExpert, width);

        var results = new float[input.Length];
        var minExperts = Math.Min(options.Value.Degraded.MinExperts, routing.TopK);
        var skipped = await dispatcher.RunAsync(model, layer, experts, input, results, width,
            skip => Enumerable.Range(0, tokens).All(t => Enumerable.Range(0, routing.TopK).Count(s => !skip.Contains(routing.Experts[(t * routing.TopK) + s])) >= minExperts),
            cancellationToken).ConfigureAwait(true);

        var output = TensorPayload.Rent(tokens, width);
        var values = output.Values;
        values.Clear();
        if (skipped.Count == 0)
        {
            block.Combine(byExpert, routing, results, values);
        }
        else
        {
            block.Combine(byExpert, routing, results, values, Enumerable.Range(0, byExpert.Length).Select(skipped.Contains).ToArray(), Renormalisation(routing, skipped));
        }

        block.AddSharedExpert(x, tokens, values);
        return output;
    }

    /// <summary>Per token: its routing weights' total over the total of the experts that answered.</summary>
    private static float[] Renormalisation(ExpertRouting routing, IReadOnlySet<int> skipped)
    {
        var scale = new float[routing.Tokens];
        for (var t = 0; t < routing.Tokens; t++)
        {
            float all = 0, kept = 0;
            for (var s = 0; s < routing.TopK; s++)
            {
                var weight = routing.Weights[(t * routing.TopK) + s];
                all += weight;
                kept += skipped.Contains(routing.Experts[(t * routing.TopK) + s]) ? 0 : weight;
            }

            scale[t] = kept == 0 ? 0 : all / kept;
        }

        return scale;
    }

    internal static (string Model, int Layer) ParseKey(string key)
    {
        var slash = key.LastIndexOf('/');
        return slash > 0 && int.TryParse(key.AsSpan(slash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var layer)
            ? (key[..slash], layer)
            : throw new FormatException($"'{key}' is not a gate key (model/layer)");
    }
}
