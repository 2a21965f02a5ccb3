using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Runtime;
using Orleans.MoE.Runtime.Serialization;

namespace Orleans.MoE.Grains.Models;

/// <summary>What a caller needs to know of a served model.</summary>
[GenerateSerializer]
public sealed record ModelInfo(
    string Name, string Architecture, int Layers, int[] MoeLayers, int Experts, int TopK, int HiddenSize, int VocabSize,
    int ContextLength, int[] StopTokens, int? DefaultMaxNewTokens, bool HasTokenizer, string Fingerprint);

/// <summary>
/// A model's tokenizer files as text, so a front end can tokenize, detokenize and apply the chat template
/// itself: tokenizer.json, tokenizer_config.json and chat_template.jinja (null when absent).
/// </summary>
[GenerateSerializer]
public sealed record ModelTokenizerFiles(string TokenizerJson, string? TokenizerConfigJson, string? ChatTemplateJinja);

/// <summary>A served model's description and tokenizer (key: model name), a stateless worker on every silo.</summary>
public interface IModelGrain : IGrainWithStringKey
{
    Task<ModelInfo> GetInfoAsync();

    /// <summary>The prompt's token ids as the model's tokenizer builds them (special tokens, BOS as configured).</summary>
    Task<int[]> EncodeAsync(string text);

    /// <summary>Text of <paramref name="tokens"/>, special tokens skipped.</summary>
    Task<string> DecodeAsync(int[] tokens);

    /// <summary>The tokenizer's files (the model must have tokenizer.json).</summary>
    Task<ModelTokenizerFiles> GetTokenizerFilesAsync();
}

/// <summary>A silo of the mesh as the status command shows it.</summary>
[GenerateSerializer]
public sealed record SiloSummary(SiloAddress Address, Dictionary<string, string> Metadata, int Activations);

/// <summary>The mesh's silos and models as one silo sees them (any key; a stateless worker).</summary>
public interface IMeshInfoGrain : IGrainWithStringKey
{
    Task<SiloSummary[]> GetSilosAsync();

    /// <summary>Models served by at least one live silo.</summary>
    Task<string[]> GetModelsAsync();
}

[StatelessWorker]
public sealed class ModelGrain(MeshModels models) : Grain, IModelGrain
{
    private MeshModel Model => models.Get(GetPrimaryKeyString());

    public Task<ModelInfo> GetInfoAsync()
    {
        var model = Model;
        var config = model.Network.Config;
        var moe = model.MoeLayers.ToArray();
        var block = moe.Length > 0 ? model.MoeBlock(moe[0]) : null;
        return Task.FromResult(new ModelInfo(
            model.Name, config.ModelType, model.Network.Layers.Count, moe, block?.ExpertCount ?? 0, block?.TopK ?? 0,
            model.Network.HiddenSize, model.Network.VocabSize, config.MaxPositionEmbeddings,
            model.Language?.Generation.StopTokens.Order().ToArray() ?? [], model.Language?.Generation.MaxNewTokens,
            model.Language is not null, model.Fingerprint));
    }

    public Task<int[]> EncodeAsync(string text) => Task.FromResult(Language.EncodePrompt(text).ToArray());

    public Task<string> DecodeAsync(int[] tokens) => Task.FromResult(Language.Tokenizer.Decode(tokens));

    public async Task<ModelTokenizerFiles> GetTokenizerFilesAsync()
    {
        var directory = Language.Directory;
        return new ModelTokenizerFiles(
            await File.ReadAllTextAsync(Path.Combine(directory, "tokenizer.json")).ConfigureAwait(false),
            await ReadIfPresentAsync(Path.Combine(directory, "tokenizer_config.json")).ConfigureAwait(false),
            await ReadIfPresentAsync(Path.Combine(directory, "chat_template.jinja")).ConfigureAwait(false));
    }

    private static async Task<string?> ReadIfPresentAsync(string path) =>
        File.Exists(path) ? await File.ReadAllTextAsync(path).ConfigureAwait(false) : null;

    private Orleans.MoE.Models.LanguageModel Language =>
        Model.Language ?? throw new InvalidOperationException($"model '{GetPrimaryKeyString()}' has no tokenizer.json: send token ids");
}

[StatelessWorker(1)]
public sealed class MeshInfoGrain(Runtime.Hosting.Silo silo) : Grain, IMeshInfoGrain
{
    public Task<SiloSummary[]> GetSilosAsync() =>
        Task.FromResult(silo.ClusterSilos.Select(s => new SiloSummary(s.Address, new Dictionary<string, string>(s.Metadata), s.Activations)).ToArray());

    public Task<string[]> GetModelsAsync() =>
        Task.FromResult(silo.ClusterSilos.SelectMany(s => s.Metadata.Keys)
            .Where(k => k.StartsWith(MeshMetadataKeys.Model(""), StringComparison.Ordinal))
            .Select(k => k[MeshMetadataKeys.Model("").Length..])
            .Distinct().Order(StringComparer.Ordinal).ToArray());
}
