namespace Orleans.MoE.Text.Tokenization;

/// <summary>
/// What a split does with the matches of its pattern (the reference's SplitDelimiterBehavior):
/// Removed drops them, Isolated keeps them as pieces, MergedWithPrevious / MergedWithNext attach
/// each to the neighbouring piece, Contiguous joins adjacent matches.
/// </summary>
internal static class SplitBehavior
{
    public const string Removed = "Removed";
    public const string Isolated = "Isolated";
    public const string MergedWithPrevious = "MergedWithPrevious";
    public const string MergedWithNext = "MergedWithNext";
    public const string Contiguous = "Contiguous";

    public static string Parse(string behavior, TokenizerJson json) => behavior is Removed or Isolated or MergedWithPrevious or MergedWithNext or Contiguous
        ? behavior
        : throw json.Error($"split behavior '{behavior}' is not one of {Removed}, {Isolated}, {MergedWithPrevious}, {MergedWithNext}, {Contiguous}");

    /// <summary>The pieces, each with whether it is removed, from the pattern's segments (as the reference's NormalizedString::split).</summary>
    public static List<(int Start, int End, bool Remove)> Apply(List<(int Start, int End, bool IsMatch)> segments, string behavior)
    {
        var result = new List<(int Start, int End, bool Remove)>(segments.Count);
        switch (behavior)
        {
            case Isolated:
                result.AddRange(segments.Select(s => (s.Start, s.End, false)));
                break;
            case Removed:
                result.AddRange(segments);
                break;
            case Contiguous:
            {
                var previousMatch = false;
                foreach (var (start, end, isMatch) in segments)
                {
                    if (isMatch == previousMatch && result.Count > 0)
                    {
                        result[^1] = (result[^1].Start, end, false);
                    }
                    else
                    {
                        result.Add((start, end, false));
                    }

                    previousMatch = isMatch;
                }

                break;
            }

            case MergedWithPrevious:
            {
                var previousMatch = false;
                foreach (var (start, end, isMatch) in segments)
                {
                    if (isMatch && !previousMatch && result.Count > 0)
                    {
                        result[^1] = (result[^1].Start, end, false);
                    }
                    else
                    {
                        result.Add((start, end, false));
                    }

                    previousMatch = isMatch;
                }

                break;
            }

            case MergedWithNext:
            {
                var previousMatch = false;
                for (var i = segments.Count - 1; i >= 0; i--)
                {
                    var (start, end, isMatch) = segments[i];
                    if (isMatch && !previousMatch && result.Count > 0)
                    {
                        result[^1] = (start, result[^1].End, false);
                    }
                    else
                    {
                        result.Add((start, end, false));
                    }

                    previousMatch = isMatch;
                }

                result.Reverse();
                break;
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(behavior), behavior, "unknown split behavior");
        }

        return result;
    }
}
