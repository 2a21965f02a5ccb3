namespace Orleans.MoE.Gpu.Benchmarks;

/// <summary>The shape of a Mixtral-style model (GQA attention, softmax top-k MoE), real or scaled down.</summary>
public sealed record ModelShape(string Name, int Hidden, int Intermediate, int Experts, int TopK, int Layers, int Heads, int KvHeads, int HeadDim, int Vocab)
{
    public static ModelShape Mixtral8x7B { get; } = new("mixtral-8x7b", 4096, 14336, 8, 2, 32, 32, 8, 128, 32000);

    public static ModelShape Qwen3Moe30B { get; } = new("qwen3-30b-a3b", 2048, 768, 128, 8, 48, 32, 4, 128, 151936);

    public static ModelShape Tiny { get; } = new("tiny", 64, 96, 8, 2, 2, 4, 2, 16, 512);

    /// <summary>The real shapes by name (for <c>--shape</c> and <c>--random</c>).</summary>
    public static IReadOnlyList<ModelShape> Real { get; } = [Mixtral8x7B, Qwen3Moe30B];

    public static ModelShape Named(string name) =>
        Real.Concat([Tiny]).FirstOrDefault(s => s.Name == name)
        ?? throw new ArgumentException($"unknown shape '{name}': use one of {string.Join(", ", Real.Concat([Tiny]).Select(s => s.Name))}");

    /// <summary>
    /// This shape scaled down for ILGPU's CPU accelerator, which simulates every thread: hidden 64, at most
    /// 16 experts and top-4, 2 layers; the FFN keeps its ratio to hidden (capped at 96).
    /// </summary>
    public ModelShape Small() => this == Tiny ? this : new(
        Name + "-small", 64, Math.Clamp(Intermediate * 64 / Hidden, 16, 96), Math.Min(Experts, 16), Math.Min(TopK, 4), 2, 4, 2, 16, 512);

    /// <summary>Bytes of bf16 weights one decoded token reads: attention, router, the top-k experts of every layer, embedding row and LM head.</summary>
    public long WeightBytesPerToken(int layers)
    {
        var attention = (long)Hidden * HeadDim * (2 * Heads + 2 * KvHeads) * 2;
        return (layers * (attention + ((long)Experts * Hidden * 2) + (TopK * 3L * Hidden * Intermediate * 2))) + (2L * Vocab * Hidden);
    }
}
