using System.Text.Json.Nodes;

namespace Orleans.MoE.Api.Tests;

/// <summary>A model whose tokenizer_config.json has a chat template: the API renders conversations with it, and its refusals are 400s.</summary>
public sealed class ChatTemplateTests : IAsyncLifetime
{
    private const string Template =
        "{{ bos_token }}{% if messages[-1]['role'] != 'user' %}{{ raise_exception('The last message must come from the user') }}{% endif %}" +
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] | trim + '<|im_end|>\\n' }}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    private string _directory = null!;
    private FrontEndServer _server = null!;

    public async Task InitializeAsync()
    {
        // The demo model's files, with a tokenizer_config.json that adds a ChatML-style template.
        _directory = Directory.CreateTempSubdirectory("moe-chat-model-").FullName;
        foreach (var file in Directory.GetFiles(RepositoryPaths.DemoModel))
        {
            File.CreateSymbolicLink(Path.Combine(_directory, Path.GetFileName(file)), file);
        }

        var config = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(RepositoryPaths.DemoModel, "tokenizer_config.json")))!.AsObject();
        config["chat_template"] = Template;
        File.Delete(Path.Combine(_directory, "tokenizer_config.json"));
        await File.WriteAllTextAsync(Path.Combine(_directory, "tokenizer_config.json"), config.ToJsonString());
        _server = await FrontEndServer.StartEmbeddedAsync(directory: _directory);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task A_conversation_is_rendered_with_the_models_template()
    {
        var answer = await _server.PostJsonAsync("/v1/chat/completions",
            $$"""{"model":"{{FrontEndServer.Model}}","messages":[{"role":"developer","content":"Be brief. "},{"role":"user","content":"def add(a, b):"}],"max_tokens":12,"temperature":0}""");

        // The engine's prompt encoding prepends the BOS token; the template writes it as text.
        var prompt = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\ndef add(a, b):<|im_end|>\n<|im_start|>assistant\n";
        Assert.Equal(await Reference.CompletionAsync(prompt, 12), answer.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(Reference.Encode(prompt).Count, answer.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task A_conversation_the_template_refuses_is_a_400_with_its_message()
    {
        var error = (await _server.PostJsonAsync("/v1/chat/completions",
            $$"""{"model":"{{FrontEndServer.Model}}","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}""", status: 400)).GetProperty("error");

        Assert.Equal("messages", error.GetProperty("param").GetString());
        Assert.Contains("The last message must come from the user", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }
}
