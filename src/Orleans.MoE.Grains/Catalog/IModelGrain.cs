namespace Orleans.MoE.Grains.Catalog;

/// <summary>What a caller needs to know of a served model.</summary>
[GenerateSerializer]
[Alias("moe.ModelInfo")]
public sealed record ModelInfo(
    string Name, string Architecture, int Layers, int[] MoeLayers, int Experts, int TopK, int HiddenSize, int VocabSize,
    int ContextLength, int[] StopTokens, int? DefaultMaxNewTokens, bool HasTokenizer, string Fingerprint);

/// <summary>
/// A model's tokenizer files as text, so a front end can tokenize, detokenize and apply the chat template
/// itself: tokenizer.json, tokenizer_config.json and chat_template.jinja (null when absent).
/// </summary>
[GenerateSerializer]
[Alias("moe.ModelTokenizerFiles")]
public sealed record ModelTokenizerFiles(string TokenizerJson, string? TokenizerConfigJson, string? ChatTemplateJinja);

/// <summary>A served model's description and tokenizer (key: model name), a stateless worker on every silo.</summary>
[Alias("moe.IModelGrain")]
public interface IModelGrain : IGrainWithStringKey
{
    [Alias("GetInfo")]
    Task<ModelInfo> GetInfoAsync();

    /// <summary>The prompt's token ids as the model's tokenizer builds them (special tokens, BOS as configured).</summary>
    [Alias("Encode")]
    Task<int[]> EncodeAsync(string text);

    /// <summary>Text of <paramref name="tokens"/>, special tokens skipped.</summary>
    [Alias("Decode")]
    Task<string> DecodeAsync(int[] tokens);

    /// <summary>The tokenizer's files (the model must have tokenizer.json).</summary>
    [Alias("GetTokenizerFiles")]
    Task<ModelTokenizerFiles> GetTokenizerFilesAsync();
}
