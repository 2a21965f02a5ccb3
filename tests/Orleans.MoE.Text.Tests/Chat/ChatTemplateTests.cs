using System.Globalization;
using Orleans.MoE.Text.Chat;
using Orleans.MoE.Text.Tokenization;

namespace Orleans.MoE.Text.Tests.Chat;

/// <summary>The template language piece by piece, the loaders of tokenizer_config.json, and the plain fallback.</summary>
public sealed class ChatTemplateTests
{
    private static readonly ChatMessage[] s_conversation =
    [
        new("system", "Be brief."),
        new("user", "Hi"),
        new("assistant", "Hello!"),
        new("user", "Bye"),
    ];

    private static string Render(string source, IReadOnlyList<ChatMessage>? messages = null, bool addGenerationPrompt = true, ChatSpecialTokens? tokens = null) =>
        ChatTemplate.Parse(source, "t.jinja", tokens ?? ChatSpecialTokens.None).Render(messages ?? s_conversation, addGenerationPrompt);

    private static ChatTemplateException SyntaxError(string source) =>
        Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(source, "t.jinja"));

    [Theory]
    [InlineData("Hello\n{% if x %}\nno end", "t.jinja:3:7: ", "'if' is not closed")]
    [InlineData("{{ 1 + }}", "t.jinja:1:8: ", "unexpected end of print statement")]
    [InlineData("line1\n  {% foo %}", "t.jinja:2:6: ", "unknown tag 'foo'")]
    [InlineData("{{ x | nosuchfilter }}", "t.jinja:1:8: ", "no filter named 'nosuchfilter'")]
    [InlineData("{{ x is nosuchtest }}", "t.jinja:1:9: ", "no test named 'nosuchtest'")]
    [InlineData("ab\n  {{ 'unterminated }}", "t.jinja:2:6: ", "unexpected end of string")]
    [InlineData("{% break %}", "t.jinja:1:4: ", "'break' outside of a loop")]
    [InlineData("x {# never closed", "t.jinja:1:3: ", "missing end of comment tag")]
    [InlineData("{{ x ) }}", "t.jinja:1:6: ", "unexpected ')'")]
    [InlineData("{% for x in y %}{% endif %}", "t.jinja:1:20: ", "unknown tag 'endif' (inside 'for')")]
    [InlineData("{% include 'other.jinja' %}", "t.jinja:1:4: ", "unknown tag 'include'")]
    [InlineData("{% set 1 = 2 %}", "t.jinja:1:8: ", "cannot assign")]
    [InlineData("{{ f(a=1, 2) }}", "t.jinja:1:11: ", "positional argument follows keyword argument")]
    public void Syntax_errors_name_the_source_line_and_column(string source, string location, string problem)
    {
        var error = SyntaxError(source);
        Assert.StartsWith(location, error.Message, StringComparison.Ordinal);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
        Assert.False(error.RaisedByTemplate);
    }

    [Theory]
    [InlineData("(", "expression nested more than")]
    [InlineData("not ", "expression nested more than")]
    [InlineData("-", "expression nested more than")]
    public void Deeply_nested_expressions_fail_instead_of_overflowing_the_stack(string prefix, string problem)
    {
        var source = "{{ " + string.Concat(Enumerable.Repeat(prefix, 100_000)) + "1" + (prefix == "(" ? new string(')', 100_000) : string.Empty) + " }}";
        Assert.Contains(problem, SyntaxError(source).Message, StringComparison.Ordinal);
        Assert.Contains("blocks nested more than", SyntaxError(string.Concat(Enumerable.Repeat("{% if true %}", 100_000))).Message, StringComparison.Ordinal);
        Assert.Equal("1", Render("{{ " + string.Concat(Enumerable.Repeat("(", 50)) + "1" + new string(')', 50) + " }}"));
    }

    [Fact]
    public void Render_errors_name_the_source_and_line()
    {
        var error = Assert.Throws<ChatTemplateException>(() => Render("line one\n{% if true %}\n{{ missing.attribute }}{% endif %}"));
        Assert.Equal("t.jinja:3: 'missing' is undefined", error.Message);
        Assert.False(error.RaisedByTemplate);
    }

    [Fact]
    public void Raise_exception_gives_exactly_the_templates_message()
    {
        var error = Assert.Throws<ChatTemplateException>(() => Render("{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"));
        Assert.Equal("System role not supported", error.Message);
        Assert.True(error.RaisedByTemplate);
    }

    [Theory]
    [InlineData("{% for m in messages %}\n{{ m.role }}\n{% endfor %}", "system\nuser\nassistant\nuser\n")]
    [InlineData("<{%- if true %} x {% endif -%}  >", "< x >")]
    [InlineData("  {% if true %}\n  in\n  {% endif %}\nout", "  in\nout")]
    [InlineData("a\n  {{- 'b' }}\n  {#- c #}\nd", "abd")]
    [InlineData("{% raw %}{{ x }}{% endraw %}", "{{ x }}")]
    [InlineData("x\n", "x")]
    public void Whitespace_is_controlled_as_with_trim_blocks_and_lstrip_blocks(string source, string expected) =>
        Assert.Equal(expected, Render(source));

    [Fact]
    public void Loop_variables_count_from_both_ends()
    {
        Assert.Equal("13F2231L", Render("{% for x in 'abc' %}{{ loop.index }}{{ loop.revindex }}{% if loop.first %}F{% endif %}{% if loop.last %}L{% endif %}{% endfor %}"));
        Assert.Equal("0:4 1:4 2:4 3:4 ", Render("{% for m in messages %}{{ loop.index0 }}:{{ loop.length }} {% endfor %}"));
        Assert.Equal("none", Render("{% for m in messages if m.role == 'tool' %}x{% else %}none{% endfor %}"));
        Assert.Equal("a=1,b=2,", Render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }},{% endfor %}"));
    }

    [Fact]
    public void A_namespace_carries_values_out_of_a_loop_and_plain_variables_do_not()
    {
        const string source = "{% set ns = namespace(last='') %}{% set plain = '' %}{% for m in messages %}{% set ns.last = m.role %}{% set plain = m.role %}{% endfor %}{{ ns.last }}/{{ plain }}";
        Assert.Equal("user/", Render(source));
    }

    [Fact]
    public void Macros_take_defaults_keywords_and_a_caller()
    {
        Assert.Equal("[a] (b)", Render("{% macro box(x, open='[', close=']') %}{{ open }}{{ x }}{{ close }}{% endmacro %}{{ box('a') }} {{ box('b', close=')', open='(') }}"));
        Assert.Equal("<X>", Render("{% macro tag() %}<{{ caller() }}>{% endmacro %}{% call tag() %}X{% endcall %}"));
    }

    [Fact]
    public void Runaway_macro_recursion_fails_cleanly()
    {
        var error = Assert.Throws<ChatTemplateException>(() => Render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"));
        Assert.Contains("nested more than", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{{ messages[::-1] | map(attribute='role') | join(',') }}", "user,assistant,user,system")]
    [InlineData("{{ messages[1:] | length }}", "3")]
    [InlineData("{{ messages[-1].content }}", "Bye")]
    [InlineData("{{ 'héllo😀'[1:3] }}|{{ 'héllo😀'[-1] }}|{{ 'héllo😀' | length }}", "él|😀|6")]
    [InlineData("{{ [0, 1, 2, 3, 4, 5][5:0:-2] }}", "[5, 3, 1]")]
    public void Slicing_and_indexing_follow_python(string source, string expected) => Assert.Equal(expected, Render(source));

    [Theory]
    [InlineData("{{ '  x ' | trim }}|{{ 'ab' | upper }}|{{ messages | length }}|{{ (messages | first).role }}", "x|AB|4|system")]
    [InlineData("{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(' ') }}", "Hi Bye")]
    [InlineData("{{ messages | rejectattr('role', 'in', ['user', 'system']) | map(attribute='content') | first }}", "Hello!")]
    [InlineData("{{ [3, 1, 2] | sort | reverse | join }}", "321")]
    [InlineData("{{ none | default('d', true) }}{{ nothing | default('e') }}", "de")]
    [InlineData("{{ 'a\nb' | indent(2, first=true) }}", "  a\n  b")]
    [InlineData("{{ 3.14159 | round(2) }} {{ '7' | int + 1 }} {{ 1 | float }}", "3.14 8 1.0")]
    [InlineData("{{ ['b', 'a', 'b'] | unique | list }}", "['b', 'a']")]
    public void Filters_transform_values(string source, string expected) => Assert.Equal(expected, Render(source));

    [Fact]
    public void Tojson_keeps_unicode_and_escapes_as_json_dumps()
    {
        Assert.Equal("\"é😀 \\\"q\\\" \\n\"", Render("{{ 'é😀 \"q\" \\n' | tojson }}"));
        Assert.Equal("{\"role\": \"system\", \"content\": \"Be brief.\"}", Render("{{ messages[0] | tojson }}"));
        Assert.Equal("[\n    1,\n    2.5\n]", Render("{{ [1, 2.5] | tojson(indent=4) }}"));
    }

    [Fact]
    public void Undefined_values_are_empty_and_falsy_until_used()
    {
        Assert.Equal("[]|0|False|True|d", Render("[{{ nothing }}]|{{ nothing | length }}|{{ nothing is defined }}|{{ not nothing }}|{{ nothing or 'd' }}"));
        Assert.Equal("[]", Render("[{{ messages[0].nothing }}{{ messages[9] }}]"));
        Assert.Contains("'nothing' is undefined", Assert.Throws<ChatTemplateException>(() => Render("{{ nothing.attribute }}")).Message, StringComparison.Ordinal);
        Assert.Contains("'dict object' has no attribute 'nothing'", Assert.Throws<ChatTemplateException>(() => Render("{{ messages[0].nothing.deeper }}")).Message, StringComparison.Ordinal);
        Assert.Contains("is not JSON serializable", Assert.Throws<ChatTemplateException>(() => Render("{{ nothing | tojson }}")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Lists_cannot_be_modified_in_the_sandbox()
    {
        var error = Assert.Throws<ChatTemplateException>(() => Render("{% set xs = [] %}{{ xs.append(1) }}"));
        Assert.EndsWith("access to attribute 'append' of 'list' object is unsafe.", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Variables_are_the_special_tokens_messages_and_generation_flag()
    {
        var tokens = new ChatSpecialTokens("<s>", "</s>", "<unk>", "<pad>");
        Assert.Equal("<s></s><unk><pad>|True|False|None", Render("{{ bos_token }}{{ eos_token }}{{ unk_token }}{{ pad_token }}|{{ add_generation_prompt }}|{{ messages[0].name is defined }}|{{ tools }}", tokens: tokens));
        Assert.Equal("False|True", Render("{{ add_generation_prompt }}|{{ bos_token is undefined }}", addGenerationPrompt: false));
        Assert.Equal("bob", Render("{{ messages[0].name }}", [new ChatMessage("user", "x", "bob")]));
    }

    [Fact]
    public void Strftime_now_formats_the_local_time()
    {
        var before = DateTime.Now;
        var rendered = Render("{{ strftime_now('%Y-%m-%d') }}|{{ strftime_now('%d %b %Y') }}");
        var after = DateTime.Now;
        Assert.Contains(rendered, new[] { before, after }.Select(t => t.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) + "|" + t.ToString("dd MMM yyyy", CultureInfo.InvariantCulture)));
    }

    [Fact]
    public void Generation_blocks_render_their_content() =>
        Assert.Equal("A: Hello!", Render("{% for m in messages if m.role == 'assistant' %}A: {% generation %}{{ m.content }}{% endgeneration %}{% endfor %}"));

    [Fact]
    public void From_tokenizer_config_reads_a_string_template_and_object_special_tokens()
    {
        const string json = """
            {
              "bos_token": { "__type": "AddedToken", "content": "<s>", "lstrip": false },
              "eos_token": "</s>",
              "unk_token": null,
              "chat_template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}"
            }
            """;
        var template = ChatTemplate.FromTokenizerConfig(json, null, "tokenizer_config.json")!;
        Assert.Equal(new ChatSpecialTokens("<s>", "</s>"), template.SpecialTokens);
        Assert.Equal("<s>Hi</s>", template.Render([new ChatMessage("user", "Hi")], addGenerationPrompt: true));
    }

    [Fact]
    public void From_tokenizer_config_picks_the_default_of_a_template_list()
    {
        const string json = """{ "chat_template": [ { "name": "tool_use", "template": "tools" }, { "name": "default", "template": "plain" } ] }""";
        Assert.Equal("plain", ChatTemplate.FromTokenizerConfig(json, null, "c.json")!.Render([], addGenerationPrompt: false));

        const string noDefault = """{ "chat_template": [ { "name": "tool_use", "template": "tools" } ] }""";
        var error = Assert.Throws<TokenizerFormatException>(() => ChatTemplate.FromTokenizerConfig(noDefault, null, "c.json"));
        Assert.Contains("none named 'default'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void From_tokenizer_config_prefers_chat_template_jinja_and_returns_null_without_a_template()
    {
        const string json = """{ "chat_template": "from config", "eos_token": "</s>" }""";
        Assert.Equal("from jinja </s>", ChatTemplate.FromTokenizerConfig(json, "from jinja {{ eos_token }}", "c.json")!.Render([], addGenerationPrompt: false));
        Assert.Null(ChatTemplate.FromTokenizerConfig("""{ "eos_token": "</s>" }""", null, "c.json"));
        Assert.Null(ChatTemplate.FromTokenizerConfig("""{ "chat_template": null }""", null, "c.json"));
    }

    [Theory]
    [InlineData("""{ "chat_template": 5 }""", "chat_template")]
    [InlineData("""{ "chat_template": "x", "bos_token": 1 }""", "bos_token")]
    [InlineData("""not json""", "not valid JSON")]
    public void From_tokenizer_config_rejects_malformed_fields(string json, string problem)
    {
        var error = Assert.Throws<TokenizerFormatException>(() => ChatTemplate.FromTokenizerConfig(json, null, "c.json"));
        Assert.StartsWith("c.json", error.Message, StringComparison.Ordinal);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void From_model_directory_loads_the_files_next_to_the_model()
    {
        var directory = Directory.CreateTempSubdirectory("chat-template-");
        try
        {
            Assert.Null(ChatTemplate.FromModelDirectory(directory.FullName));

            File.WriteAllText(Path.Combine(directory.FullName, "tokenizer_config.json"), """{ "chat_template": "config {{ eos_token }}", "eos_token": {"content": "<|im_end|>"} }""");
            Assert.Equal("config <|im_end|>", ChatTemplate.FromModelDirectory(directory.FullName)!.Render([], addGenerationPrompt: false));

            var jinjaPath = Path.Combine(directory.FullName, "chat_template.jinja");
            File.WriteAllText(jinjaPath, "jinja {{ eos_token }}\n");
            var template = ChatTemplate.FromModelDirectory(directory.FullName)!;
            Assert.Equal("jinja <|im_end|>", template.Render([], addGenerationPrompt: false));
            Assert.Equal(jinjaPath, template.SourceName);

            File.WriteAllText(jinjaPath, "{% if %}");
            Assert.StartsWith(jinjaPath + ":1:", Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromModelDirectory(directory.FullName)).Message, StringComparison.Ordinal);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void Real_template_files_load_from_a_model_directory_layout()
    {
        var source = File.ReadAllText(RepositoryPaths.Fixture(Path.Combine("chat-templates", "qwen3-30b-a3b.jinja")));
        var json = $$"""{ "eos_token": "<|im_end|>", "chat_template": {{System.Text.Json.JsonSerializer.Serialize(source)}} }""";
        var template = ChatTemplate.FromTokenizerConfig(json, null, "qwen3/tokenizer_config.json")!;
        Assert.Equal("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", template.Render([new ChatMessage("user", "Hi")], addGenerationPrompt: true));
    }

    [Fact]
    public void Render_plain_writes_role_lines_and_a_generation_prompt()
    {
        Assert.Equal("system: Be brief.\nuser: Hi\nassistant: Hello!\nuser: Bye\nassistant:", ChatTemplate.RenderPlain(s_conversation, addGenerationPrompt: true));
        Assert.Equal("user: a\nb\n", ChatTemplate.RenderPlain([new ChatMessage("user", "a\nb")], addGenerationPrompt: false));
        Assert.Equal(string.Empty, ChatTemplate.RenderPlain([], addGenerationPrompt: false));
    }
}
