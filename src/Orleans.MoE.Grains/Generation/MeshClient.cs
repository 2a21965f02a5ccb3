using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans.MoE.Models.Generation;

namespace Orleans.MoE.Grains.Generation;

/// <summary>
/// Generation through the mesh for a caller outside it (an Orleans client's grain factory) or on a
/// silo: tokens stream as an <see cref="IAsyncEnumerable{T}"/>, the last with the reason the sequence ended. If the silo running the sequence dies,
/// the prompt plus the tokens already received are submitted again (to whichever silo the cluster
/// picks) and the stream simply continues; greedy and seeded sampling continue exactly. Cancelling the
/// enumeration, or abandoning it, cancels the sequence. Each resubmission is logged (a warning naming
/// the request and why the sequence was lost) to <paramref name="logger"/>.
/// </summary>
public sealed partial class MeshClient(IGrainFactory grains, ILogger? logger = null)
{
    private readonly ILogger _logger = logger ?? NullLogger.Instance;

    /// <summary>How many times one stream is resubmitted before the failure is passed on.</summary>
    public int MaxResubmissions { get; init; } = 5;

    /// <summary>The pause before the first resubmission; it doubles with each further one (0.25, 0.5, 1, 2, 4 s by default).</summary>
    public TimeSpan ResubmissionPause { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Resubmissions made so far by this client (after a silo running a sequence died).</summary>
    public int Resubmissions => _resubmissions;

    private int _resubmissions;

    public async IAsyncEnumerable<GeneratedToken> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var produced = new List<int>();
        var failures = 0;
        while (true)
        {
            var current = request with
            {
                Prompt = [.. request.Prompt, .. produced],
                MaxNewTokens = request.MaxNewTokens - produced.Count,
                Resumed = request.Resumed + produced.Count,
            };
            var grain = grains.GetGrain<IGenerationGrain>($"{request.Model}/{Guid.NewGuid():N}");
            var finished = false;
            Exception? lost;
            try
            {
                var from = 0;
                lost = await StartAsync(grain, current).ConfigureAwait(false);
                while (lost is null && !finished)
                {
                    (var chunk, lost) = await ReadAsync(grain, from, cancellationToken).ConfigureAwait(false);
                    if (chunk is null)
                    {
                        break; // The sequence was lost with its silo: resubmit what we have.
                    }

                    from += chunk.Tokens.Length;
                    var finish = FinishRule.Parse(chunk.Finish);
                    for (var i = 0; i < chunk.Tokens.Length; i++)
                    {
                        produced.Add(chunk.Tokens[i]);
                        yield return new GeneratedToken(chunk.Tokens[i], i == chunk.Tokens.Length - 1 ? finish : null);
                    }

                    finished = chunk.Finish is not null;
                }

                if (finished)
                {
                    yield break;
                }
            }
            finally
            {
                if (!finished)
                {
                    _ = CancelQuietlyAsync(grain);
                }
            }

            var reason = lost is null ? "its silo lost it" : $"{lost.GetType().Name}: {FirstLine(lost.Message)}";
            if (++failures > MaxResubmissions)
            {
                LogGivingUp(_logger, request.RequestId ?? "-", request.Model, failures, reason);
                throw new SequenceLostException($"the sequence was lost {failures} times with the silos running it; giving up");
            }

            LogResubmitting(_logger, request.RequestId ?? "-", request.Model, reason, produced.Count, failures, MaxResubmissions);

            // The cluster needs a moment to declare a dead silo dead (and the client to stop using it as its
            // gateway): resubmit after a pause that grows with each loss.
            await Task.Delay(ResubmissionPause * (1 << Math.Min(failures - 1, 4)), cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref _resubmissions);
        }
    }

    /// <summary>Admits the sequence; the error when the silo chosen for it went away meanwhile.</summary>
    private static async Task<Exception?> StartAsync(IGenerationGrain grain, GenerationRequest request)
    {
        try
        {
            await grain.StartAsync(request).ConfigureAwait(false);
            return null;
        }
        catch (Exception e) when (IsLost(e) && e is not SequenceLostException)
        {
            return e;
        }
    }

    /// <summary>The next chunk, or none and the error when the sequence is lost (its silo died or no longer knows it).</summary>
    private static async Task<(GenerationChunk? Chunk, Exception? Lost)> ReadAsync(IGenerationGrain grain, int from, CancellationToken cancellationToken)
    {
        try
        {
            return (await grain.ReadAsync(from).WaitAsync(cancellationToken).ConfigureAwait(false), null);
        }
        catch (Exception e) when (IsLost(e))
        {
            return (null, e);
        }
    }

    private static string FirstLine(string message) => message.Split('\n', 2)[0].Trim();

    private static bool IsLost(Exception e) => e is SequenceLostException || MeshFaults.IsTransient(e);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Request {RequestId}: the sequence of model {Model} was lost ({Reason}); resubmitting it with the {Produced} tokens produced so far (resubmission {Attempt} of at most {Max})")]
    private static partial void LogResubmitting(ILogger logger, string requestId, string model, string reason, int produced, int attempt, int max);

    [LoggerMessage(Level = LogLevel.Error, Message = "Request {RequestId}: the sequence of model {Model} was lost {Times} times, the last time: {Reason}; giving up")]
    private static partial void LogGivingUp(ILogger logger, string requestId, string model, int times, string reason);

    private static async Task CancelQuietlyAsync(IGenerationGrain grain)
    {
        try
        {
            await grain.CancelAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (MeshFaults.IsTransient(e) || e is OrleansException or InvalidOperationException or ObjectDisposedException)
        {
            // Its silo is gone or the client is closing: the reader lease ends the sequence there.
        }
    }
}
