using System.Runtime.CompilerServices;
using Orleans.MoE.Runtime;

namespace Orleans.MoE.Grains.Generation;

/// <summary>
/// Generation through the mesh for a caller outside it (a <c>ClusterClient</c>'s grain factory) or on a
/// silo: tokens stream as an <see cref="IAsyncEnumerable{T}"/>. If the silo running the sequence dies,
/// the prompt plus the tokens already received are submitted again (to whichever silo the cluster
/// picks) and the stream simply continues; greedy and seeded sampling continue exactly. Cancelling the
/// enumeration, or abandoning it, cancels the sequence.
/// </summary>
public sealed class MeshClient(IGrainFactory grains)
{
    /// <summary>How many times one stream is resubmitted before the failure is passed on.</summary>
    public int MaxResubmissions { get; init; } = 5;

    /// <summary>Resubmissions made so far by this client (after a silo running a sequence died).</summary>
    public int Resubmissions => _resubmissions;

    private int _resubmissions;

    public async IAsyncEnumerable<int> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
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
            try
            {
                var from = 0;
                var started = await StartAsync(grain, current).ConfigureAwait(false);
                while (started && !finished)
                {
                    var chunk = await ReadAsync(grain, from, cancellationToken).ConfigureAwait(false);
                    if (chunk is null)
                    {
                        break; // The sequence was lost with its silo: resubmit what we have.
                    }

                    from += chunk.Tokens.Length;
                    foreach (var token in chunk.Tokens)
                    {
                        produced.Add(token);
                        yield return token;
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

            if (++failures > MaxResubmissions)
            {
                throw new SequenceLostException($"the sequence was lost {failures} times with the silos running it; giving up");
            }

            Interlocked.Increment(ref _resubmissions);
        }
    }

    /// <summary>Admits the sequence; false when the silo chosen for it went away meanwhile.</summary>
    private static async Task<bool> StartAsync(IGenerationGrain grain, GenerationRequest request)
    {
        try
        {
            await Translate(async () =>
            {
                await grain.StartAsync(request).ConfigureAwait(false);
                return true;
            }).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (IsLost(e) && e is not SequenceLostException)
        {
            return false;
        }
    }

    /// <summary>The next chunk, or null when the sequence is lost (its silo died or no longer knows it).</summary>
    private static async Task<GenerationChunk?> ReadAsync(IGenerationGrain grain, int from, CancellationToken cancellationToken)
    {
        try
        {
            return await Translate(() => grain.ReadAsync(from)).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsLost(e))
        {
            return null;
        }
    }

    private static bool IsLost(Exception e) =>
        e is SiloUnavailableException or TimeoutException or Runtime.Messaging.ConnectionClosedException or SequenceLostException;

    private static async Task CancelQuietlyAsync(IGenerationGrain grain)
    {
        try
        {
            await grain.CancelAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is SiloUnavailableException or TimeoutException or Runtime.Messaging.ConnectionClosedException or RemoteGrainException or InvalidOperationException or ObjectDisposedException)
        {
            // Its silo is gone or the client is closing: the reader lease ends the sequence there.
        }
    }

    /// <summary>Gives the mesh's own errors back their types (see <see cref="MeshErrors"/>).</summary>
    internal static async Task<T> Translate<T>(Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (RemoteGrainException e)
        {
            throw MeshErrors.Typed(e);
        }
    }
}
