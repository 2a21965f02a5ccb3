using System.Collections.Concurrent;
using System.Diagnostics;
using Orleans.MoE.Api.OpenAi;
using Orleans.MoE.Grains.Catalog;
using Orleans.MoE.Text.Chat;
using Orleans.MoE.Text.Tokenization;

namespace Orleans.MoE.Api.Serving;

/// <summary>
/// A model as the front end uses it: its description from the mesh, and its tokenizer and chat template
/// built here from the files a silo sends, so prompts are tokenized and tokens turned back into text
/// without a call per token.
/// </summary>
internal sealed class ServedModel(ModelInfo info, PromptEncoder encoder, ChatTemplate? template)
{
    public ModelInfo Info { get; } = info;

    public PromptEncoder Encoder { get; } = encoder;

    /// <summary>The model's chat template; null when it has none (then the plain format is used).</summary>
    public ChatTemplate? Template { get; } = template;

    public string Name => Info.Name;

    /// <summary>
    /// The conversation as the prompt the model expects, ready for the assistant's answer. A template's
    /// text is tokenized without adding special tokens (the template writes them, as transformers
    /// assumes); the plain format is tokenized as a completion prompt (BOS as configured).
    /// </summary>
    public int[] EncodeChat(IReadOnlyList<ChatMessage> messages)
    {
        try
        {
            return Template is { } template
                ? [.. Encoder.Tokenizer.Encode(template.Render(messages, addGenerationPrompt: true), addSpecialTokens: false)]
                : [.. Encoder.Encode(ChatTemplate.RenderPlain(messages, addGenerationPrompt: true))];
        }
        catch (ChatTemplateException e)
        {
            throw ApiException.Invalid($"the model's chat template refused the conversation: {e.Message}", "messages");
        }
    }
}

/// <summary>
/// The models the mesh serves, each fetched once (a failed fetch is tried again on the next request). The
/// list of served models is asked of the mesh at most every two seconds, not on every request; while the
/// mesh cannot be reached (a gateway died and the client has not dropped it yet) the last list stands,
/// so requests go on to the generation, which survives the silo's death itself.
/// </summary>
internal sealed class ModelCatalog(IGrainFactory grains)
{
    private static readonly TimeSpan s_listAge = TimeSpan.FromSeconds(2);
    private readonly ConcurrentDictionary<string, Lazy<Task<ServedModel>>> _models = new(StringComparer.Ordinal);
    private (string[] Names, long Time)? _list;

    /// <summary>Model names served by at least one live silo.</summary>
    public async Task<string[]> ListAsync()
    {
        if (_list is { } list && Stopwatch.GetElapsedTime(list.Time) < s_listAge)
        {
            return list.Names;
        }

        for (var attempt = 0; ; attempt++)
        {
            try
            {
                var names = await grains.GetGrain<IMeshInfoGrain>("mesh").GetModelsAsync().ConfigureAwait(false);
                _list = (names, Stopwatch.GetTimestamp());
                return names;
            }
            catch (Exception e) when (Grains.MeshFaults.IsTransient(e))
            {
                if (_list is { } stale)
                {
                    return stale.Names;
                }

                if (attempt == 3)
                {
                    throw;
                }
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250 << attempt)).ConfigureAwait(false);
        }
    }

    /// <summary>The model, or a 404 naming the models there are.</summary>
    public async Task<ServedModel> GetAsync(string name)
    {
        var served = await ListAsync().ConfigureAwait(false);
        if (!served.Contains(name, StringComparer.Ordinal))
        {
            throw new ApiException(404, "invalid_request_error", "model_not_found",
                $"The model '{name}' does not exist; this mesh serves: {string.Join(", ", served.DefaultIfEmpty("(none)"))}", "model");
        }

        var entry = _models.GetOrAdd(name, n => new Lazy<Task<ServedModel>>(() => FetchAsync(n)));
        try
        {
            return await entry.Value.ConfigureAwait(false);
        }
        catch (Exception)
        {
            _models.TryRemove(KeyValuePair.Create(name, entry));
            throw;
        }
    }

    private async Task<ServedModel> FetchAsync(string name)
    {
        var grain = grains.GetGrain<IModelGrain>(name);
        var info = await grain.GetInfoAsync().ConfigureAwait(false);
        if (!info.HasTokenizer)
        {
            throw ApiException.Invalid($"model '{name}' has no tokenizer.json, so this API cannot turn text into its tokens", "model");
        }

        var files = await grain.GetTokenizerFilesAsync().ConfigureAwait(false);
        var tokenizer = Tokenizer.FromJson(files.TokenizerJson, $"{name}/tokenizer.json");
        var encoder = PromptEncoder.Create(tokenizer, files.TokenizerConfigJson, $"{name}/tokenizer_config.json");
        var template = files.TokenizerConfigJson is null && files.ChatTemplateJinja is null
            ? null
            : ChatTemplate.FromTokenizerConfig(files.TokenizerConfigJson ?? "{}", files.ChatTemplateJinja, $"{name}/tokenizer_config.json");
        return new ServedModel(info, encoder, template);
    }
}
