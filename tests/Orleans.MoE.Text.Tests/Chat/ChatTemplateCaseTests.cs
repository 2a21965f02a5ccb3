using System.Text.Json;
using Orleans.MoE.Text.Chat;

namespace Orleans.MoE.Text.Tests.Chat;

/// <summary>
/// Every case of tests/fixtures/chat-templates/cases.json, which Python's jinja2 (configured as transformers
/// configures it) rendered with generate.py: the same prompt, character for character, or the same error.
/// </summary>
public sealed class ChatTemplateCaseTests
{
    private static readonly Lazy<JsonElement> s_root = new(() =>
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "cases.json")));
        return document.RootElement.Clone();
    });

    private static JsonElement Snippets => s_root.Value.GetProperty("snippets");

    private static JsonElement TemplateCases => s_root.Value.GetProperty("cases");

    private static string Folder => RepositoryPaths.Fixture("chat-templates");

    public static TheoryData<int, string> Cases()
    {
        var data = new TheoryData<int, string>();
        var i = 0;
        foreach (var c in TemplateCases.EnumerateArray())
        {
            data.Add(i++, $"{c.GetProperty("template").GetString()} {c.GetProperty("conversation").GetString()} gen={c.GetProperty("add_generation_prompt").GetBoolean()}");
        }

        return data;
    }

    public static TheoryData<string> SnippetNames()
    {
        var data = new TheoryData<string>();
        foreach (var snippet in Snippets.EnumerateArray())
        {
            data.Add(snippet.GetProperty("name").GetString()!);
        }

        return data;
    }

    [Fact]
    public void Every_template_has_cases_including_prompts_and_errors()
    {
        var cases = TemplateCases.EnumerateArray().ToList();
        var templates = Directory.GetFiles(Folder, "*.jinja").Select(Path.GetFileNameWithoutExtension).ToHashSet();
        Assert.Equal(templates, cases.Select(c => c.GetProperty("template").GetString()).ToHashSet());
        Assert.Contains(cases, c => c.TryGetProperty("expected_error", out _));
        Assert.True(cases.Count(c => c.TryGetProperty("expected", out _)) > 100);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Renders_as_jinja2_does(int index, string description)
    {
        var c = TemplateCases[index];
        var name = c.GetProperty("template").GetString()!;
        var tokens = new ChatSpecialTokens(c.GetProperty("bos_token").GetString(), c.GetProperty("eos_token").GetString());
        var template = ChatTemplate.Parse(File.ReadAllText(Path.Combine(Folder, name + ".jinja")), name, tokens);
        AssertRendersAsExpected(c, template, Messages(c.GetProperty("messages")), c.GetProperty("add_generation_prompt").GetBoolean(), description);
    }

    [Theory]
    [MemberData(nameof(SnippetNames))]
    public void Snippet_renders_as_jinja2_does(string name)
    {
        var snippet = Snippets.EnumerateArray().Single(s => s.GetProperty("name").GetString() == name);
        var template = ChatTemplate.Parse(snippet.GetProperty("source").GetString()!, name, new ChatSpecialTokens("<s>", "</s>"));
        AssertRendersAsExpected(snippet, template, Messages(s_root.Value.GetProperty("snippet_messages")), addGenerationPrompt: true, name);
    }

    private static List<ChatMessage> Messages(JsonElement messages) =>
        messages.EnumerateArray()
            .Select(m => new ChatMessage(
                m.GetProperty("role").GetString()!,
                m.GetProperty("content").GetString()!,
                m.TryGetProperty("name", out var n) ? n.GetString() : null))
            .ToList();

    private static void AssertRendersAsExpected(JsonElement c, ChatTemplate template, List<ChatMessage> messages, bool addGenerationPrompt, string description)
    {
        if (c.TryGetProperty("expected", out var expected))
        {
            Assert.Equal(expected.GetString(), template.Render(messages, addGenerationPrompt));
            return;
        }

        var error = Assert.Throws<ChatTemplateException>(() => template.Render(messages, addGenerationPrompt));
        var message = c.GetProperty("expected_error").GetString()!;
        if (c.GetProperty("error_kind").GetString() == "raise_exception")
        {
            Assert.True(error.RaisedByTemplate, description);
            Assert.Equal(message, error.Message);
        }
        else
        {
            // Other errors name where they happened: "source:line: " and then the message Python gave.
            Assert.False(error.RaisedByTemplate, description);
            Assert.Equal($"{template.SourceName}:", error.Message[..(template.SourceName.Length + 1)]);
            Assert.EndsWith(": " + message, error.Message, StringComparison.Ordinal);
        }
    }
}
