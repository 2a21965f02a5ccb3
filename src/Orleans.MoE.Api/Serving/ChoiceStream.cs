using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text;
using Orleans.MoE.Api.Operations;
using Orleans.MoE.Grains.Generation;

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
        var decoder = model.Encoder.Tokenizer.CreateStreamingDecoder(skipSpecialTokens: true);
        var text = new StringBuilder();
        var emitted = 0;
        var count = 0;
        var last = -1;
        var previous = started;
        using var counted = metrics.CountResubmissions(client);
        await foreach (var token in client.GenerateAsync(request, cancellationToken).ConfigureAwait(false))
        {
            var now = Stopwatch.GetTimestamp();
            metrics.TokenStreamed(count == 0, Stopwatch.GetElapsedTime(previous, now));
            previous = now;
            count++;
            last = token;
            text.Append(decoder.Push(token));
            var current = text.ToString();
            if (FindStop(current, stop, emitted) is { } at)
            {
                yield return new ChoiceDelta(index, current[emitted..at], "stop", count);
                yield break; // Leaving the enumeration cancels the sequence in the mesh.
            }

            var safe = current.Length - HeldBack(current, stop);
            if (safe > emitted)
            {
                yield return new ChoiceDelta(index, current[emitted..safe], null, count);
                emitted = safe;
            }
        }

        var rest = text.Append(decoder.Flush()).ToString();
        if (FindStop(rest, stop, emitted) is { } end)
        {
            yield return new ChoiceDelta(index, rest[emitted..end], "stop", count);
            yield break;
        }

        var finish = request.StopTokens.Contains(last) ? "stop" : "length";
        yield return new ChoiceDelta(index, rest[emitted..], finish, count);
    }

    /// <summary>Where the first stop string starts in <paramref name="text"/> (searching from text not yet sent), or null.</summary>
    internal static int? FindStop(string text, IReadOnlyList<string> stop, int emitted)
    {
        int? first = null;
        foreach (var s in stop)
        {
            var from = Math.Max(0, emitted - s.Length + 1);
            var at = text.IndexOf(s, Math.Min(from, text.Length), StringComparison.Ordinal);
            if (at >= 0 && (first is null || at < first))
            {
                first = Math.Max(at, emitted);
            }
        }

        return first;
    }

    /// <summary>How many trailing characters could begin a stop string (they are held back until the next token).</summary>
    internal static int HeldBack(string text, IReadOnlyList<string> stop)
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
