using Orleans.MoE.Models;
using Orleans.MoE.Text.Chat;
using Orleans.MoE.Models.Generation;

namespace Orleans.MoE.Api.Tests;

/// <summary>What the single-process engine answers (the demo model loaded in this process): the outputs the API must reproduce.</summary>
internal static class Reference
{
    private static readonly Lazy<LanguageModel> s_model = new(() => LanguageModel.Load(RepositoryPaths.DemoModel));
    private static readonly SemaphoreSlim s_one = new(1, 1);

    /// <summary>The prompt's token ids, as the engine encodes them.</summary>
    public static IReadOnlyList<int> Encode(string prompt) => s_model.Value.EncodePrompt(prompt);

    /// <summary>The greedy completion of <paramref name="prompt"/>.</summary>
    public static async Task<string> CompletionAsync(string prompt, int tokens)
    {
        await s_one.WaitAsync();
        try
        {
            var text = new System.Text.StringBuilder();
            await foreach (var chunk in s_model.Value.GenerateAsync(prompt, tokens, new SamplingOptions()))
            {
                text.Append(chunk.Text);
            }

            return text.ToString();
        }
        finally
        {
            s_one.Release();
        }
    }

    /// <summary>The greedy answer to a one-message conversation (the demo model has no chat template: the plain format).</summary>
    public static Task<string> ChatAsync(string content, int tokens) =>
        CompletionAsync(ChatTemplate.RenderPlain([new ChatMessage("user", content)], addGenerationPrompt: true), tokens);
}

/// <summary>One embedded front end (silo, front end and demo model in this process) shared by a group of test classes.</summary>
public sealed class EmbeddedServerFixture : IAsyncLifetime
{
    internal FrontEndServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await FrontEndServer.StartEmbeddedAsync();

    public Task DisposeAsync() => Server.DisposeAsync().AsTask();
}

[CollectionDefinition(NAME)]
public sealed class EmbeddedServerGroup : ICollectionFixture<EmbeddedServerFixture>
{
    public const string NAME = "embedded front end";
}
