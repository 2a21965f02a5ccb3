using System.Text.Json;
using Orleans.MoE.Models.Chat;

namespace Orleans.MoE.Models.Tests.Chat;

/// <summary>
/// Every case of tests/fixtures/chat-templates/cases.json, which Python's jinja2 (configured as transformers
/// configures it) rendered with generate.py: the same prompt, character for character, or the same error.
/// </summary>
public sealed class ChatTemplateCaseTests
{
    private static readonly Lazy<JsonElement> s_cases = new(() =>
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "cases.json")));
        return document.RootElement.GetProperty("cases").Clone();
    });

    private static string Folder => RepositoryPaths.Fixture("chat-templates");

    public static TheoryData<int, string> Cases()
    {
        var data = new TheoryData<int, string>();
        var i = 0;
        foreach (var c in s_cases.Value.EnumerateArray())
        {
            data.Add(i++, $"{c.GetProperty("template").GetString()} {c.GetProperty("conversation").GetString()} gen={c.GetProperty("add_generation_prompt").GetBoolean()}");
        }

        return data;
    }

    [Fact]
    public void Every_template_has_cases_including_prompts_and_errors()
    {
        var cases = s_cases.Value.EnumerateArray().ToList();
        var templates = Directory.GetFiles(Folder, "*.jinja").Select(Path.GetFileNameWithoutExtension).ToHashSet();
        Assert.Equal(templates, cases.Select(c => c.GetProperty("template").GetString()).ToHashSet());
        Assert.Contains(cases, c => c.TryGetProperty("expected_error", out _));
        Assert.True(cases.Count(c => c.TryGetProperty("expected", out _)) > 100);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Renders_as_jinja2_does(int index, string description)
    {
        var c = s_cases.Value[index];
        var name = c.GetProperty("template").GetString()!;
        var tokens = new ChatSpecialTokens(c.GetProperty("bos_token").GetString(), c.GetProperty("eos_token").GetString());
        var template = ChatTemplate.Parse(File.ReadAllText(Path.Combine(Folder, name + ".jinja")), name, tokens);
        var messages = c.GetProperty("messages").EnumerateArray()
            .Select(m => new ChatMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!))
            .ToList();
        var addGenerationPrompt = c.GetProperty("add_generation_prompt").GetBoolean();

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
            Assert.False(error.RaisedByTemplate, description);
            Assert.EndsWith(message, error.Message, StringComparison.Ordinal);
        }
    }
}
