using System.Text;
using Orleans.MoE.Text.Tokenization;

namespace Orleans.MoE.Text.Chat;

/// <summary>
/// A Hugging Face chat template (the Jinja2 subset chat templates use), rendered as transformers'
/// <c>tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=...)</c> renders it: Jinja2's
/// ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, loop controls, <c>raise_exception</c>,
/// <c>strftime_now</c>, a <c>tojson</c> that is <c>json.dumps(ensure_ascii=False)</c>, and the special tokens
/// (<c>bos_token</c>, <c>eos_token</c>, <c>unk_token</c>, <c>pad_token</c>) the template was loaded with.
/// <c>tools</c> and <c>documents</c> are None, as transformers passes them when a request has none.
/// </summary>
public sealed class ChatTemplate
{
    private readonly List<Stmt> _body;

    private ChatTemplate(string source, string sourceName, List<Stmt> body, ChatSpecialTokens specialTokens)
    {
        Source = source;
        SourceName = sourceName;
        SpecialTokens = specialTokens;
        _body = body;
    }

    /// <summary>The template text.</summary>
    public string Source { get; }

    /// <summary>Where the template came from (a path), for messages.</summary>
    public string SourceName { get; }

    /// <summary>The special tokens the template sees as variables.</summary>
    public ChatSpecialTokens SpecialTokens { get; }

    /// <summary>Parses a template that sees no special tokens.</summary>
    /// <exception cref="ChatTemplateException">A syntax error; the message names <paramref name="sourceName"/>, line and column.</exception>
    public static ChatTemplate Parse(string source, string sourceName) => Parse(source, sourceName, ChatSpecialTokens.None);

    /// <summary>Parses a template that sees <paramref name="specialTokens"/>.</summary>
    /// <exception cref="ChatTemplateException">A syntax error; the message names <paramref name="sourceName"/>, line and column.</exception>
    public static ChatTemplate Parse(string source, string sourceName, ChatSpecialTokens specialTokens)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(specialTokens);
        return new ChatTemplate(source, sourceName, Parser.Parse(source, sourceName), specialTokens);
    }

    /// <summary>Renders <paramref name="messages"/> into a prompt.</summary>
    /// <exception cref="ChatTemplateException">
    /// The template called <c>raise_exception(msg)</c> (the message is exactly <c>msg</c> and
    /// <see cref="ChatTemplateException.RaisedByTemplate"/> is set), or failed (an undefined value used, a type error);
    /// then the message names the source and line.
    /// </exception>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var state = new RenderState();
        var globals = new Scope(state);
        Runtime.AddGlobals(globals);
        SetToken(globals, "bos_token", SpecialTokens.BosToken);
        SetToken(globals, "eos_token", SpecialTokens.EosToken);
        SetToken(globals, "unk_token", SpecialTokens.UnkToken);
        SetToken(globals, "pad_token", SpecialTokens.PadToken);
        globals.Set("messages", messages.Select(ToDict).ToList());
        globals.Set("add_generation_prompt", addGenerationPrompt);
        globals.Set("tools", null);
        globals.Set("documents", null);
        try
        {
            return Stmt.Render(_body, new Scope(globals));
        }
        catch (ChatTemplateException e) when (!e.RaisedByTemplate)
        {
            throw new ChatTemplateException($"{SourceName}:{state.Line}: {e.Message}", e);
        }
    }

    private static void SetToken(Scope scope, string name, string? token)
    {
        if (token is not null)
        {
            scope.Set(name, token);
        }
    }

    private static object? ToDict(ChatMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var dict = new DictValue();
        dict.Set("role", message.Role);
        dict.Set("content", message.Content);
        if (message.Name is not null)
        {
            dict.Set("name", message.Name);
        }

        return dict;
    }

    /// <summary>
    /// The model's template from <c>chat_template.jinja</c> (preferred, as in recent transformers) or the
    /// <c>chat_template</c> field of <c>tokenizer_config.json</c> in <paramref name="directory"/>, with the special tokens
    /// of tokenizer_config.json; null when the model has no template.
    /// </summary>
    /// <exception cref="TokenizerFormatException">tokenizer_config.json is not valid JSON or a field has the wrong type.</exception>
    /// <exception cref="ChatTemplateException">The template has a syntax error.</exception>
    public static ChatTemplate? FromModelDirectory(string directory)
    {
        var configPath = Path.Combine(directory, "tokenizer_config.json");
        var jinjaPath = Path.Combine(directory, "chat_template.jinja");
        var configJson = File.Exists(configPath) ? File.ReadAllText(configPath) : null;
        var jinja = File.Exists(jinjaPath) ? File.ReadAllText(jinjaPath) : null;
        return FromSources(configJson, configPath, jinja, jinjaPath);
    }

    /// <summary>
    /// The template of a tokenizer_config.json (its <c>chat_template</c>: a string, or a list of
    /// <c>{"name", "template"}</c> of which the one named "default" is used), unless
    /// <paramref name="chatTemplateJinja"/> (the content of chat_template.jinja) is given, which takes precedence.
    /// Special tokens may be strings or objects with a "content". Null when there is no template.
    /// </summary>
    /// <exception cref="TokenizerFormatException">The JSON is not valid or a field has the wrong type.</exception>
    /// <exception cref="ChatTemplateException">The template has a syntax error.</exception>
    public static ChatTemplate? FromTokenizerConfig(string tokenizerConfigJson, string? chatTemplateJinja, string sourceName) =>
        FromSources(tokenizerConfigJson, sourceName, chatTemplateJinja, sourceName);

    private static ChatTemplate? FromSources(string? configJson, string configName, string? jinja, string jinjaName)
    {
        var config = configJson is null ? null : TokenizerConfigFile.Parse(configJson, configName);
        var template = jinja ?? config?.ChatTemplate();
        if (template is null)
        {
            return null;
        }

        var tokens = config is null
            ? ChatSpecialTokens.None
            : new ChatSpecialTokens(config.SpecialToken("bos_token"), config.SpecialToken("eos_token"), config.SpecialToken("unk_token"), config.SpecialToken("pad_token"));
        return Parse(template, jinja is not null ? jinjaName : configName, tokens);
    }

    /// <summary>
    /// The prompt for a model without a chat template: each message on its own line as
    /// <c>"{role}: {content}\n"</c> (content verbatim), then <c>"assistant:"</c> when
    /// <paramref name="addGenerationPrompt"/> is set. For example <c>"system: Be brief.\nuser: Hi\nassistant:"</c>.
    /// </summary>
    public static string RenderPlain(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var builder = new StringBuilder();
        foreach (var message in messages)
        {
            builder.Append(message.Role).Append(": ").Append(message.Content).Append('\n');
        }

        if (addGenerationPrompt)
        {
            builder.Append("assistant:");
        }

        return builder.ToString();
    }
}
