using System.Runtime.CompilerServices;
using Orleans.MoE.Models.Configuration;
using Orleans.MoE.Models.Generation;
using Orleans.MoE.Models.Tokenization;

namespace Orleans.MoE.Models;

/// <summary>A piece of streamed text and the token that completed it; <see cref="Finish"/> is set on the last.</summary>
public readonly record struct TextChunk(int TokenId, string Text, FinishReason? Finish);

/// <summary>
/// A served model: the network, its tokenizer and its generation defaults, loaded from one Hugging Face
/// model directory. Streams text for a prompt.
/// </summary>
public sealed class LanguageModel : IDisposable
{
    private readonly int? _prependedBos;

    private LanguageModel(string directory, CausalLanguageModel network, Tokenizer tokenizer, GenerationConfig generation, int? prependedBos)
    {
        Directory = directory;
        Network = network;
        Tokenizer = tokenizer;
        Generation = generation;
        _prependedBos = prependedBos;
    }

    /// <summary>The model directory's full path.</summary>
    public string Directory { get; }

    /// <summary>The directory's name, as the model is called in output.</summary>
    public string Name => Path.GetFileName(Path.TrimEndingDirectorySeparator(Directory));

    public CausalLanguageModel Network { get; }

    public Tokenizer Tokenizer { get; }

    public GenerationConfig Generation { get; }

    /// <summary>Loads config.json, the safetensors, tokenizer.json and generation_config.json.</summary>
    public static LanguageModel Load(string directory, IProgress<(long Done, long Total)>? progress = null)
    {
        var tokenizerPath = Path.Combine(directory, "tokenizer.json");
        if (!File.Exists(tokenizerPath))
        {
            throw new FileNotFoundException($"{tokenizerPath}: the model has no tokenizer.json, so it cannot turn text into tokens", tokenizerPath);
        }

        var tokenizer = Tokenizer.Load(tokenizerPath);
        var network = ModelLoader.Load(directory, progress);
        return new LanguageModel(Path.GetFullPath(directory), network, tokenizer, GenerationConfig.Load(directory, network.Config), BosToPrepend(directory, tokenizer));
    }

    /// <summary>
    /// The prompt's token ids as the reference tokenizer class builds them: the tokenizer's own special
    /// tokens, plus the BOS token when tokenizer_config.json sets add_bos_token and the post-processor did not add it.
    /// </summary>
    public IReadOnlyList<int> EncodePrompt(string prompt)
    {
        var ids = Tokenizer.Encode(prompt, addSpecialTokens: true);
        return _prependedBos is { } bos && (ids.Count == 0 || ids[0] != bos) ? [bos, .. ids] : ids;
    }

    private static int? BosToPrepend(string directory, Tokenizer tokenizer)
    {
        var path = Path.Combine(directory, "tokenizer_config.json");
        if (!File.Exists(path))
        {
            return null;
        }

        var config = ConfigFile.ParseFile(File.ReadAllText(path), path);
        if (config.FlagField("add_bos_token") != true)
        {
            return null;
        }

        var bos = config.TextField("bos_token") ?? throw config.Invalid("bos_token", "must name a token when add_bos_token is set");
        return tokenizer.TokenToId(bos) ?? throw config.Invalid("bos_token", $"'{bos}' is not in the tokenizer's vocabulary");
    }

    /// <summary>Streams the completion of <paramref name="prompt"/> (tokenized with the model's special tokens) as text.</summary>
    public async IAsyncEnumerable<TextChunk> GenerateAsync(
        string prompt, int maxNewTokens, SamplingOptions sampling, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var ids = EncodePrompt(prompt);
        var options = new GenerationOptions { MaxNewTokens = maxNewTokens, Sampling = sampling, StopTokens = Generation.StopTokens };
        var decoder = Tokenizer.CreateStreamingDecoder(skipSpecialTokens: true);
        await foreach (var token in TokenGenerator.GenerateAsync(Network, ids, options, cancellationToken).ConfigureAwait(false))
        {
            var text = decoder.Push(token.Id);
            if (token.Finish is not null)
            {
                text += decoder.Flush();
            }

            yield return new TextChunk(token.Id, text, token.Finish);
        }
    }

    public void Dispose() => Network.Dispose();
}
