using System.Diagnostics;
using Orleans.MoE.Grains.Models;
using Orleans.MoE.Grains.Placement;
using Orleans.MoE.Models.Layers;
using Orleans.MoE.Runtime;
using Orleans.MoE.Runtime.Placement;
using Orleans.MoE.Runtime.Serialization;

namespace Orleans.MoE.Grains.Experts;

/// <summary>
/// One expert activation. On activation it maps the expert's three projections from the silo's copy of
/// the checkpoint (views into the memory-mapped files: only this expert's bytes are ever read here),
/// charges their size to the silo's expert budget and joins the silo's registry of local experts, so a
/// request addressed to any expert of the layer runs every co-located expert it names in one group.
/// Placement: <see cref="ExpertPlacementDirector"/>. Reentrant: batches from several gates interleave.
/// </summary>
[CustomPlacement(typeof(ExpertPlacementDirector))]
[KeepAlive]
[Reentrant]
public sealed class ExpertGrain(MeshModels models, LocalExperts local) : Grain, IExpertGrain
{
    private ExpertKey _key;
    private long _bytes;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _key = ExpertKey.Parse(GetPrimaryKeyString());
        var block = models.Get(_key.Model).MoeBlock(_key.Layer);
        if (_key.Expert < 0 || _key.Expert >= block.ExpertCount)
        {
            throw new ArgumentOutOfRangeException(nameof(cancellationToken), _key.Expert, $"model '{_key.Model}' layer {_key.Layer} has {block.ExpertCount} experts, not expert {_key.Expert}");
        }

        var expert = block.Experts[_key.Expert];
        _bytes = expert.WeightBytes;
        local.Add(_key, expert, _bytes);
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        local.Remove(_key, _bytes);
        return Task.CompletedTask;
    }

    public Task<ExpertInfo> DescribeAsync() => Task.FromResult(new ExpertInfo(_key.ToString(), Silo.ToString(), _bytes));

    public Task RetireAsync()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    public Task<ExpertBatchResult> ExecuteAsync(ExpertBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        using var rows = batch.Rows;
        if (batch.Model != _key.Model || batch.Layer != _key.Layer)
        {
            throw new ArgumentException($"a batch for {batch.Model} layer {batch.Layer} was sent to expert {_key}", nameof(batch));
        }

        if (rows.Shape is not [var count, var hidden] || rows.DType != TensorElementType.F32 || batch.Slots.Sum(s => s.Count) != count)
        {
            throw new ArgumentException($"expert batch rows [{string.Join(", ", rows.Shape)}] do not match its slots ({batch.Slots.Sum(s => s.Count)} rows)", nameof(batch));
        }

        var started = Stopwatch.GetTimestamp();
        var group = new List<ExpertRows>(batch.Slots.Length);
        var missing = new List<int>();
        var offset = 0;
        for (var i = 0; i < batch.Slots.Length; i++)
        {
            var slot = batch.Slots[i];
            var key = _key with { Expert = slot.Expert, Replica = slot.Replica };
            if (local.TryGet(key, out var expert))
            {
                group.Add(new ExpertRows(expert, offset, slot.Count));
                local.Load.Record(key, slot.Count);
            }
            else
            {
                missing.Add(i);
            }

            offset += slot.Count;
        }

        var output = TensorPayload.Rent(TensorElementType.F32, count, hidden);
        var values = output.GetWritableSingles();
        if (missing.Count > 0)
        {
            values.Clear();
        }

        ExpertGroup.Forward(group, rows.AsSingles(), values, hidden);
        var micros = (long)Stopwatch.GetElapsedTime(started).TotalMicroseconds;
        return Task.FromResult(new ExpertBatchResult(output, missing.ToArray(), micros));
    }
}
