using Orleans.MoE.Gpu.Experts;
using Orleans.MoE.Grains.Catalog;
using Orleans.MoE.Grains.Transport;
using Orleans.MoE.Models.Checkpoints;
using Orleans.MoE.Models.Layers;
using Orleans.Runtime.Placement;

namespace Orleans.MoE.Grains.Experts;

/// <summary>
/// One expert activation. On activation it charges the expert's size to the silo's expert budget, maps
/// only the expert's three projections from the silo's copy of the checkpoint (a mapping of their bytes
/// alone, read in at once) and joins the silo's registry of local experts, which runs the batches that
/// gates send over the data channel (every co-located expert a batch names, in one group). On a GPU silo
/// (<see cref="ExpertDevice"/>) it uploads the projections to the device instead, releases the mapping
/// and charges their device size. On deactivation the mapping or the device memory is released (after
/// the last computation using it) and the budget freed.
/// Placement: <see cref="Placement.ExpertPlacementDirector"/>. Reentrant: locating and moving never wait on each other.
/// Moved by the balancer with Orleans migration; the expert's load over the window goes with it.
/// </summary>
[ExpertPlacement]
[KeepAlive]
[Reentrant]
public sealed class ExpertGrain(MeshModels models, LocalExperts local, DataChannelServer channel) : Grain, IExpertGrain, IGrainMigrationParticipant
{
    private const string LoadKey = "moe.load";
    private ExpertKey _key;
    private long _bytes;
    private long _migratedLoad;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _key = ExpertKey.Parse(this.GetPrimaryKeyString());
        var model = models.Get(_key.Model);
        var block = model.MoeBlock(_key.Layer);
        if (_key.Expert < 0 || _key.Expert >= block.ExpertCount)
        {
            throw new KeyNotFoundException($"model '{_key.Model}' layer {_key.Layer} has {block.ExpertCount} experts, not expert {_key.Expert}");
        }

        var layout = block.Experts[_key.Expert];
        var device = local.Device;
        _bytes = device is null ? layout.WeightBytes : DeviceExpert.BytesOf(layout);
        local.Reserve(_key, _bytes);
        var mapped = new List<MappedMatrix>(3);
        try
        {
            Linear Map(Linear linear)
            {
                var matrix = model.Network.Checkpoint.MapMatrix(
                    linear.Source ?? throw new InvalidOperationException($"expert {_key}: a projection has no checkpoint tensor to map"),
                    linear.OutFeatures, linear.InFeatures);
                mapped.Add(matrix);
                matrix.Prefetch();
                return new Linear(matrix.Matrix, linear.Bias, linear.Source);
            }

            var weights = new SwiGluMlp(Map(layout.Gate), Map(layout.Up), Map(layout.Down));
            if (device is null)
            {
                local.Add(_key, new HostedExpert(weights, _bytes, new Mappings(mapped)));
            }
            else
            {
                var uploaded = device.Upload(weights);
                new Mappings(mapped).Dispose(); // the device holds the weights now
                mapped.Clear();
                local.Add(_key, new HostedExpert(uploaded, _bytes, new DeviceWeights(device, uploaded)));
            }

            if (_migratedLoad > 0)
            {
                local.Load.Record(_key, _migratedLoad);
            }
        }
        catch
        {
            new Mappings(mapped).Dispose();
            local.Unreserve(_bytes);
            throw;
        }

        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        local.Remove(_key);
        return Task.CompletedTask;
    }

    public void OnDehydrate(IDehydrationContext dehydrationContext)
    {
        ArgumentNullException.ThrowIfNull(dehydrationContext);
        dehydrationContext.TryAddValue(LoadKey, local.Load.Snapshot().GetValueOrDefault(_key));
    }

    public void OnRehydrate(IRehydrationContext rehydrationContext)
    {
        ArgumentNullException.ThrowIfNull(rehydrationContext);
        if (rehydrationContext.TryGetValue(LoadKey, out long load))
        {
            _migratedLoad = load;
        }
    }

    public Task<ExpertInfo> DescribeAsync() => Task.FromResult(new ExpertInfo(_key.ToString(), local.Silo, _bytes, channel.Endpoint?.ToString() ?? ""));

    public Task MoveAsync(SiloAddress target)
    {
        RequestContext.Set(IPlacementDirector.PlacementHintKey, target);
        this.MigrateOnIdle();
        return Task.CompletedTask;
    }

    public Task RetireAsync()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }
}

/// <summary>One expert's weights on the silo's device, freed through it.</summary>
internal sealed class DeviceWeights(ExpertDevice device, DeviceExpert expert) : IDisposable
{
    public void Dispose() => device.Free(expert);
}

/// <summary>The mappings of one expert's projections, released together.</summary>
internal sealed class Mappings(List<MappedMatrix> mappings) : IDisposable
{
    public void Dispose()
    {
        foreach (var mapping in mappings)
        {
            mapping.Dispose();
        }
    }
}
