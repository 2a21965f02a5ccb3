namespace Orleans.MoE.Grains.Experts;

/// <summary>Tokens one expert activation computed within the load window.</summary>
[GenerateSerializer]
[Alias("moe.ExpertLoad")]
public readonly record struct ExpertLoad(string Key, long Tokens);
