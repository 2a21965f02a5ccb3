using System.Runtime.CompilerServices;
using Orleans.MoE.Models.Generation;
using Orleans.MoE.Text.Tokenization;

namespace Orleans.MoE.Models;

/// <summary>A piece of streamed text and the token that completed it; <see cref="Finish"/> is set on the last.</summary>
public readonly record struct TextChunk(int TokenId, string Text, FinishReason? Finish);

/// <summary>
/// A served model: the network, its tokenizer and its generation defaults, loaded from one Hugging Face
/// model directory. Streams text for a prompt.
/// </summary>
public sealed class LanguageModel : IDisposable
{
    private readonly PromptEncoder _encoder;

    private LanguageModel(string directory, CausalLanguageModel network, PromptEncoder encoder, GenerationConfig generation)
    {
        Directory = directory;
        Network = network;
        Tokenizer = encoder.Tokenizer;
        Generation = generation;
        _encoder = encoder;
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
        return new LanguageModel(Path.GetFullPath(directory), network, PromptEncoder.Load(directory, tokenizer), GenerationConfig.Load(directory, network.Config));
    }

    /// <summary>The prompt's token ids as the reference tokenizer class builds them (see <see cref="PromptEncoder"/>).</summary>
    public IReadOnlyList<int> EncodePrompt(string prompt) => _encoder.Encode(prompt);

    /// <summary>Streams the completion of <paramref name="prompt"/> (tokenized with the model's special tokens) as text.</summary>
    public IAsyncEnumerable<TextChunk> GenerateAsync(string prompt, int maxNewTokens, SamplingOptions sampling, CancellationToken cancellationToken = default) =>
        GenerateAsync(prompt, maxNewTokens, sampling, null, cancellationToken);

    /// <summary>
    /// The same through another forward pass of this model (the GPU backend's): <paramref name="forward"/>, given
    /// the room a sequence needs, returns a step that takes the new tokens and gives the last one's logits.
    /// </summary>
    public async IAsyncEnumerable<TextChunk> GenerateAsync(
        string prompt, int maxNewTokens, SamplingOptions sampling, Func<int, Func<int[], float[]>>? forward, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var ids = EncodePrompt(prompt);
        var options = new GenerationOptions { MaxNewTokens = maxNewTokens, Sampling = sampling, StopTokens = Generation.StopTokens };
        var decoder = Tokenizer.CreateStreamingDecoder(skipSpecialTokens: true);
        var tokens = forward is null
            ? TokenGenerator.GenerateAsync(Network, ids, options, cancellationToken)
            : TokenGenerator.GenerateAsync(forward(ids.Count + maxNewTokens), ids, options, cancellationToken);
        await foreach (var token in tokens.ConfigureAwait(false))
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
