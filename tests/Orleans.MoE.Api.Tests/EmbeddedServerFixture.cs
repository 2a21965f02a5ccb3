using Orleans.MoE.Models;
using Orleans.MoE.Models.Chat;
using Orleans.MoE.Models.Generation;

namespace Orleans.MoE.Api.Tests;

/// <summary>One embedded front end (silo, front end and demo model in this process) shared by a collection, and the model loaded in process for expected outputs.</summary>
public sealed class EmbeddedServerFixture : IAsyncLifetime
{
    private LanguageModel? _reference;

    internal FrontEndServer Server { get; private set; } = null!;

    /// <summary>The greedy completion of <paramref name="prompt"/> by the single-process engine.</summary>
    public async Task<string> ExpectedAsync(string prompt, int tokens)
    {
        var text = new System.Text.StringBuilder();
        await foreach (var chunk in _reference!.GenerateAsync(prompt, tokens, new SamplingOptions()))
        {
            text.Append(chunk.Text);
        }

        return text.ToString();
    }

    /// <summary>The greedy answer to a one-message conversation (the demo model has no chat template: the plain format).</summary>
    public Task<string> ExpectedChatAsync(string content, int tokens) =>
        ExpectedAsync(ChatTemplate.RenderPlain([new ChatMessage("user", content)], addGenerationPrompt: true), tokens);

    public async Task InitializeAsync()
    {
        _reference = LanguageModel.Load(RepositoryPaths.DemoModel);
        Server = await FrontEndServer.StartEmbeddedAsync();
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        _reference?.Dispose();
    }
}

[CollectionDefinition(NAME)]
public sealed class EmbeddedServerGroup : ICollectionFixture<EmbeddedServerFixture>
{
    public const string NAME = "embedded front end";
}
