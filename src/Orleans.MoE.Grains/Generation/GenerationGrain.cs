using Microsoft.Extensions.Options;
using Orleans.MoE.Grains.Cluster;

namespace Orleans.MoE.Grains.Generation;

/// <summary>A sequence's handle on the silo whose scheduler generates it; see <see cref="IGenerationGrain"/>.</summary>
[ModelSiloPlacement]
[Reentrant]
public sealed class GenerationGrain(GenerationScheduler scheduler, IOptions<MeshOptions> options) : Grain, IGenerationGrain
{
    private static readonly TimeSpan LongPoll = TimeSpan.FromSeconds(1);
    private Sequence? _sequence;

    public Task StartAsync(GenerationRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (_sequence is not null)
        {
            throw new InvalidOperationException($"sequence {this.GetPrimaryKeyString()} has already started");
        }

        if (!this.GetPrimaryKeyString().StartsWith(request.Model + "/", StringComparison.Ordinal))
        {
            throw new ArgumentException($"sequence {this.GetPrimaryKeyString()} is not for model '{request.Model}'", nameof(request));
        }

        _sequence = scheduler.Admit(request);
        DelayDeactivation(options.Value.Scheduler.ReaderLease);
        return Task.CompletedTask;
    }

    public async Task<GenerationChunk> ReadAsync(int from)
    {
        var sequence = _sequence ?? throw new SequenceLostException($"sequence {this.GetPrimaryKeyString()} is not known on {RuntimeIdentity} (the silo that ran it is gone); submit it again");
        DelayDeactivation(options.Value.Scheduler.ReaderLease);
        var chunk = await sequence.ReadAsync(from, LongPoll).ConfigureAwait(true);
        if (chunk.Finish is not null)
        {
            DeactivateOnIdle();
        }

        return chunk;
    }

    public Task CancelAsync()
    {
        _sequence?.Cancel("the caller cancelled the sequence");
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _sequence?.Cancel($"the sequence's grain was deactivated ({reason})");
        return Task.CompletedTask;
    }
}
