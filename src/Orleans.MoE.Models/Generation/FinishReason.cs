namespace Orleans.MoE.Models.Generation;

/// <summary>Why generation stopped.</summary>
public enum FinishReason
{
    /// <summary>The model produced a stop token (EOS).</summary>
    Stop,

    /// <summary>The token budget ran out.</summary>
    Length,
}

/// <summary>
/// When a sequence ends, decided in one place for every generator (this process's <see cref="TokenGenerator"/>,
/// the mesh's schedulers), and the names the wire and the OpenAI API use for it.
/// </summary>
public static class FinishRule
{
    /// <summary>Why the sequence ends with <paramref name="token"/>, its <paramref name="produced"/>-th new token; null when it goes on.</summary>
    public static FinishReason? After(int token, int produced, IEnumerable<int> stopTokens, int maxNewTokens) =>
        stopTokens.Contains(token) ? FinishReason.Stop
        : produced >= maxNewTokens ? FinishReason.Length
        : null;

    /// <summary>"stop" or "length".</summary>
    public static string Name(this FinishReason reason) => reason == FinishReason.Stop ? "stop" : "length";

    /// <summary>The reason <see cref="Name"/> gave, or null for anything else.</summary>
    public static FinishReason? Parse(string? name) => name switch
    {
        "stop" => FinishReason.Stop,
        "length" => FinishReason.Length,
        _ => null,
    };
}
