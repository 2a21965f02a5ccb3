using System.Text;

namespace Orleans.MoE.Text.Chat;

/// <summary>What one render shares across scopes: where it is (for error messages) and how deep macro calls go.</summary>
internal sealed class RenderState
{
    public const int MaxCallDepth = 200;

    public int Line { get; set; }

    public int CallDepth { get; set; }
}

/// <summary>
/// Variables visible at one point. As in Jinja2, a for loop's body (each iteration), a macro call and a block
/// <c>set</c> get their own scope; <c>if</c> does not, so <c>{% set %}</c> inside a loop does not leak out of it.
/// </summary>
internal sealed class Scope
{
    private readonly Dictionary<string, object?> _variables = new(StringComparer.Ordinal);
    private readonly Scope? _parent;

    public Scope(RenderState state)
    {
        State = state;
    }

    public Scope(Scope parent)
    {
        _parent = parent;
        State = parent.State;
    }

    public RenderState State { get; }

    public object? Lookup(string name)
    {
        for (var scope = this; scope is not null; scope = scope._parent)
        {
            if (scope._variables.TryGetValue(name, out var value))
            {
                return value;
            }
        }

        return Undefined.Name(name);
    }

    public void Set(string name, object? value) => _variables[name] = value;
}

internal enum Flow
{
    Normal,
    Break,
    Continue,
}

internal abstract class Stmt(int line)
{
    public int Line { get; } = line;

    public abstract Flow Execute(Scope scope, StringBuilder output);

    public static Flow ExecuteAll(List<Stmt> body, Scope scope, StringBuilder output)
    {
        foreach (var statement in body)
        {
            scope.State.Line = statement.Line;
            var flow = statement.Execute(scope, output);
            if (flow != Flow.Normal)
            {
                return flow;
            }
        }

        return Flow.Normal;
    }

    public static string Render(List<Stmt> body, Scope scope)
    {
        var output = new StringBuilder();
        ExecuteAll(body, scope, output);
        return output.ToString();
    }
}

internal sealed class TextStmt(string text, int line) : Stmt(line)
{
    public override Flow Execute(Scope scope, StringBuilder output)
    {
        output.Append(text);
        return Flow.Normal;
    }
}

internal sealed class OutputStmt(Expr expression, int line) : Stmt(line)
{
    public override Flow Execute(Scope scope, StringBuilder output)
    {
        output.Append(PyOps.Str(expression.Eval(scope)));
        return Flow.Normal;
    }
}

internal sealed class IfStmt(List<(Expr Test, List<Stmt> Body)> branches, List<Stmt> otherwise, int line) : Stmt(line)
{
    public override Flow Execute(Scope scope, StringBuilder output)
    {
        foreach (var (test, body) in branches)
        {
            if (PyOps.Truthy(test.Eval(scope)))
            {
                return ExecuteAll(body, scope, output);
            }
        }

        return ExecuteAll(otherwise, scope, output);
    }
}

internal sealed class BreakStmt(bool isBreak, int line) : Stmt(line)
{
    public override Flow Execute(Scope scope, StringBuilder output) => isBreak ? Flow.Break : Flow.Continue;
}

/// <summary>Where a <c>for</c> or <c>set</c> puts values: a name, <c>ns.attr</c>, or a tuple of targets to unpack into.</summary>
internal abstract class Target
{
    public abstract void Assign(Scope scope, object? value);
}

internal sealed class NameTarget(string name) : Target
{
    public override void Assign(Scope scope, object? value) => scope.Set(name, value);
}

internal sealed class NamespaceTarget(string name, string attribute) : Target
{
    public override void Assign(Scope scope, object? value)
    {
        if (scope.Lookup(name) is not NamespaceValue ns)
        {
            throw new ChatTemplateException("cannot assign attribute on non-namespace object");
        }

        ns.Attributes[attribute] = value;
    }
}

internal sealed class TupleTarget(List<Target> items) : Target
{
    public override void Assign(Scope scope, object? value)
    {
        var values = PyOps.Iterate(value);
        if (values.Count != items.Count)
        {
            throw new ChatTemplateException(values.Count < items.Count
                ? $"not enough values to unpack (expected {items.Count}, got {values.Count})"
                : $"too many values to unpack (expected {items.Count})");
        }

        for (var i = 0; i < items.Count; i++)
        {
            items[i].Assign(scope, values[i]);
        }
    }
}

internal sealed class SetStmt(Target target, Expr value, int line) : Stmt(line)
{
    public override Flow Execute(Scope scope, StringBuilder output)
    {
        target.Assign(scope, value.Eval(scope));
        return Flow.Normal;
    }
}

/// <summary><c>{% set x %}...{% endset %}</c>, optionally through filters.</summary>
internal sealed class SetBlockStmt(Target target, List<FilterCall> filters, List<Stmt> body, int line) : Stmt(line)
{
    public override Flow Execute(Scope scope, StringBuilder output)
    {
        object? value = Render(body, new Scope(scope));
        foreach (var filter in filters)
        {
            value = filter.Apply(value, scope);
        }

        target.Assign(scope, value);
        return Flow.Normal;
    }
}

internal sealed class FilterBlockStmt(List<FilterCall> filters, List<Stmt> body, int line) : Stmt(line)
{
    public override Flow Execute(Scope scope, StringBuilder output)
    {
        object? value = Render(body, new Scope(scope));
        foreach (var filter in filters)
        {
            value = filter.Apply(value, scope);
        }

        output.Append(PyOps.Str(value));
        return Flow.Normal;
    }
}

internal sealed class ForStmt(Target target, Expr iterable, Expr? condition, List<Stmt> body, List<Stmt> otherwise, int line) : Stmt(line)
{
    public override Flow Execute(Scope scope, StringBuilder output)
    {
        List<object?> items = [.. PyOps.Iterate(iterable.Eval(scope))];
        if (condition is not null)
        {
            items = items.Where(item =>
            {
                var test = new Scope(scope);
                target.Assign(test, item);
                return PyOps.Truthy(condition.Eval(test));
            }).ToList();
        }

        if (items.Count == 0)
        {
            return ExecuteAll(otherwise, scope, output);
        }

        var loop = new LoopValue(items);
        for (var i = 0; i < items.Count; i++)
        {
            loop.Index0 = i;
            var iteration = new Scope(scope);
            iteration.Set("loop", loop);
            target.Assign(iteration, items[i]);
            if (ExecuteAll(body, iteration, output) == Flow.Break)
            {
                break;
            }
        }

        return Flow.Normal;
    }
}

internal sealed record MacroParameter(string Name, Expr? Default);

/// <summary>A macro (or the body of a call block, passed to the macro as <c>caller</c>); calling it renders its body.</summary>
internal sealed class MacroValue(string name, List<MacroParameter> parameters, List<Stmt> body, Scope closure) : CallableValue(name)
{
    public override object? Call(CallArguments arguments)
    {
        var state = closure.State;
        if (state.CallDepth >= RenderState.MaxCallDepth)
        {
            throw new ChatTemplateException($"macro '{Name}' nested more than {RenderState.MaxCallDepth} calls deep");
        }

        var scope = new Scope(closure);
        var extra = new List<object?>();
        for (var i = 0; i < arguments.Positional.Count; i++)
        {
            if (i < parameters.Count)
            {
                scope.Set(parameters[i].Name, arguments.Positional[i]);
            }
            else
            {
                extra.Add(arguments.Positional[i]);
            }
        }

        var kwargs = new DictValue();
        var given = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (key, value) in arguments.Named)
        {
            var index = parameters.FindIndex(p => p.Name == key);
            if (index >= 0 && index < arguments.Positional.Count)
            {
                throw new ChatTemplateException($"macro '{Name}' got multiple values for argument '{key}'");
            }

            if (index >= 0 || key == "caller")
            {
                scope.Set(key, value);
                given.Add(key);
            }
            else
            {
                kwargs.Set(key, value);
            }
        }

        for (var i = arguments.Positional.Count; i < parameters.Count; i++)
        {
            var parameter = parameters[i];
            if (!given.Contains(parameter.Name))
            {
                scope.Set(parameter.Name, parameter.Default is null
                    ? Undefined.WithHint($"parameter '{parameter.Name}' was not provided")
                    : parameter.Default.Eval(scope));
            }
        }

        scope.Set("varargs", new TupleValue(extra));
        scope.Set("kwargs", kwargs);
        var line = state.Line;
        state.CallDepth++;
        try
        {
            var result = Stmt.Render(body, scope);
            state.Line = line;
            return result;
        }
        finally
        {
            state.CallDepth--;
        }
    }
}

internal sealed class MacroStmt(string name, List<MacroParameter> parameters, List<Stmt> body, int line) : Stmt(line)
{
    public override Flow Execute(Scope scope, StringBuilder output)
    {
        scope.Set(name, new MacroValue(name, parameters, body, scope));
        return Flow.Normal;
    }
}

/// <summary><c>{% call(args) macro(...) %}body{% endcall %}</c>: calls the macro with the body as <c>caller</c>.</summary>
internal sealed class CallBlockStmt(CallExpr call, List<MacroParameter> parameters, List<Stmt> body, int line) : Stmt(line)
{
    public override Flow Execute(Scope scope, StringBuilder output)
    {
        output.Append(PyOps.Str(call.EvalWith(scope, "caller", new MacroValue("caller", parameters, body, scope))));
        return Flow.Normal;
    }
}
