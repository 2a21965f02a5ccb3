namespace Orleans.MoE.Grains.Generation;

/// <summary>
/// What a sequence must satisfy before it is generated, checked in one place: by the silo's scheduler when
/// it admits a sequence, and by the front end before it sends one (to answer with the right status at once).
/// </summary>
public static class GenerationRules
{
    /// <summary>
    /// Throws <see cref="ArgumentException"/> (its message for the caller as is) for an empty prompt or a token outside the vocabulary, and
    /// <see cref="ContextLengthExceededException"/> when the prompt plus up to <paramref name="maxNewTokens"/>
    /// does not fit the model's context. <paramref name="resumed"/>: tokens of the prompt that were generated
    /// before (a sequence resubmitted after a failover), counted as completion in the message.
    /// </summary>
    public static void Check(IReadOnlyList<int> prompt, int maxNewTokens, int vocabSize, int contextLength, int resumed = 0)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        if (prompt.Count == 0)
        {
            throw new ArgumentException("the prompt has no tokens");
        }

        foreach (var token in prompt)
        {
            if ((uint)token >= (uint)vocabSize)
            {
                throw new ArgumentException($"token id {token} is outside the model's vocabulary (0 to {vocabSize - 1})");
            }
        }

        if (maxNewTokens < 1 || prompt.Count + maxNewTokens > contextLength)
        {
            var (asked, completion) = (prompt.Count - resumed, Math.Max(maxNewTokens, 1) + resumed);
            throw new ContextLengthExceededException(
                $"This model's maximum context length is {contextLength} tokens. However, you requested {asked + completion} tokens " +
                $"({asked} in the prompt, {completion} for the completion). Please reduce the length of the prompt or of the completion.");
        }
    }
}
