namespace Orleans.MoE.Grains.Catalog;

/// <summary>A served model's description and tokenizer, answered by every silo that serves it.</summary>
[StatelessWorker]
public sealed class ModelGrain(MeshModels models) : Grain, IModelGrain
{
    private MeshModel Model => models.Get(this.GetPrimaryKeyString());

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
            await File.ReadAllTextAsync(Path.Combine(directory, "tokenizer.json")).ConfigureAwait(true),
            await ReadIfPresentAsync(Path.Combine(directory, "tokenizer_config.json")).ConfigureAwait(true),
            await ReadIfPresentAsync(Path.Combine(directory, "chat_template.jinja")).ConfigureAwait(true));
    }

    private static async Task<string?> ReadIfPresentAsync(string path) =>
        File.Exists(path) ? await File.ReadAllTextAsync(path).ConfigureAwait(true) : null;

    private Orleans.MoE.Models.LanguageModel Language =>
        Model.Language ?? throw new InvalidOperationException($"model '{this.GetPrimaryKeyString()}' has no tokenizer.json: send token ids");
}
