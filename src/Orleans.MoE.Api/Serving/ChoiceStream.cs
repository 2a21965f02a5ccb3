using System.Diagnostics;
using System.Runtime.CompilerServices;
using Orleans.MoE.Api.Operations;
using Orleans.MoE.Grains.Generation;
using Orleans.MoE.Models.Generation;

namespace Orleans.MoE.Api.Serving;

/// <summary>New text of one choice; the last delta carries the finish reason ("stop" or "length") and the token count.</summary>
internal readonly record struct ChoiceDelta(int Index, string Text, string? Finish, int CompletionTokens);

/// <summary>
/// One choice's tokens from the mesh, turned into text as it grows: characters split over tokens wait for
/// their last byte, and text that could be the start of a stop string waits until it is known not to be.
/// A stop string ends the choice there (it is not part of the text) and cancels the sequence in the mesh.
/// </summary>
internal static class ChoiceStream
{
    public static async IAsyncEnumerable<ChoiceDelta> RunAsync(
        int index, MeshClient client, GenerationRequest request, ServedModel model, IReadOnlyList<string> stop, ApiMetrics metrics,
        long started, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // Only text not yet sent is kept: text is held back while it could begin a stop string, so a stop
        // string can only start in what is pending.
        var decoder = model.Encoder.Tokenizer.CreateStreamingDecoder(skipSpecialTokens: true);
        var pending = "";
        var count = 0;
        FinishReason? finish = null;
        var previous = started;
        using var counted = metrics.CountResubmissions(client);
        await foreach (var token in client.GenerateAsync(request, cancellationToken).ConfigureAwait(false))
        {
            var now = Stopwatch.GetTimestamp();
            metrics.TokenStreamed(count == 0, Stopwatch.GetElapsedTime(previous, now));
            previous = now;
            count++;
            finish = token.Finish;
            pending += decoder.Push(token.Id);
            if (FindStop(pending, stop) is { } at)
            {
                yield return new ChoiceDelta(index, pending[..at], "stop", count);
                yield break; // Leaving the enumeration cancels the sequence in the mesh.
            }

            var safe = pending.Length - HeldBack(pending, stop);
            if (safe > 0)
            {
                yield return new ChoiceDelta(index, pending[..safe], null, count);
                pending = pending[safe..];
            }
        }

        pending += decoder.Flush();
        if (FindStop(pending, stop) is { } end)
        {
            yield return new ChoiceDelta(index, pending[..end], "stop", count);
            yield break;
        }

        // The mesh says why the sequence ended (a stop token or the budget: FinishRule).
        yield return new ChoiceDelta(index, pending, (finish ?? FinishReason.Length).Name(), count);
    }

    /// <summary>Where the first stop string starts in <paramref name="text"/>, or null.</summary>
    private static int? FindStop(string text, IReadOnlyList<string> stop)
    {
        int? first = null;
        foreach (var s in stop)
        {
            var at = text.IndexOf(s, StringComparison.Ordinal);
            if (at >= 0 && (first is null || at < first))
            {
                first = at;
            }
        }

        return first;
    }

    /// <summary>How many trailing characters could begin a stop string (they are held back until the next token).</summary>
    private static int HeldBack(string text, IReadOnlyList<string> stop)
    {
        var held = 0;
        foreach (var s in stop)
        {
            for (var length = Math.Min(s.Length - 1, text.Length); length > held; length--)
            {
                if (text.AsSpan(text.Length - length).SequenceEqual(s.AsSpan(0, length)))
                {
                    held = length;
                    break;
                }
            }
        }

        return held;
    }
}
