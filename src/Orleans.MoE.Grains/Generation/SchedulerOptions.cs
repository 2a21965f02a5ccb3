namespace Orleans.MoE.Grains.Generation;

/// <summary>Continuous batching on each silo.</summary>
public sealed class SchedulerOptions
{
    /// <summary>Sequences that advance together in one step.</summary>
    public int MaxBatchSequences { get; set; } = 32;

    /// <summary>
    /// Tokens one step runs at most (every running sequence's next token, then prompt chunks): a long
    /// prompt is prefilled over several steps, so it neither stalls the others nor makes oversized messages.
    /// At least <see cref="MaxBatchSequences"/>.
    /// </summary>
    public int MaxStepTokens { get; set; } = 512;

    /// <summary>Sequences running or waiting on this silo; more are refused as busy.</summary>
    public int MaxQueuedSequences { get; set; } = 256;

    /// <summary>A sequence whose caller has not read its tokens for this long is cancelled (the caller went away).</summary>
    public TimeSpan ReaderLease { get; set; } = TimeSpan.FromSeconds(30);
}
