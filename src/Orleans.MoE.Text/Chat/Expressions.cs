namespace Orleans.MoE.Text.Chat;

/// <summary>An expression of the template language; evaluates to a runtime value (see Values.cs).</summary>
internal abstract class Expr
{
    public abstract object? Eval(Scope scope);
}

internal sealed class ConstExpr(object? value) : Expr
{
    public object? Value { get; } = value;

    public override object? Eval(Scope scope) => Value;
}

internal sealed class NameExpr(string name) : Expr
{
    public string Name { get; } = name;

    public override object? Eval(Scope scope) => scope.Lookup(Name);
}

internal sealed class ListExpr(List<Expr> items) : Expr
{
    public override object? Eval(Scope scope) => items.Select(i => i.Eval(scope)).ToList();
}

internal sealed class TupleExpr(List<Expr> items) : Expr
{
    public List<Expr> Items { get; } = items;

    public override object? Eval(Scope scope) => new TupleValue(Items.Select(i => i.Eval(scope)).ToArray());
}

internal sealed class DictExpr(List<(Expr Key, Expr Value)> pairs) : Expr
{
    public override object? Eval(Scope scope)
    {
        var dict = new DictValue();
        foreach (var (key, value) in pairs)
        {
            dict.Set(key.Eval(scope), value.Eval(scope));
        }

        return dict;
    }
}

internal sealed class AttributeExpr(Expr target, string name) : Expr
{
    public override object? Eval(Scope scope) => Runtime.GetAttribute(target.Eval(scope), name);
}

internal sealed class ItemExpr(Expr target, Expr key) : Expr
{
    public override object? Eval(Scope scope) => Runtime.GetItem(target.Eval(scope), key.Eval(scope));
}

/// <summary>The <c>a:b:c</c> of a subscript; evaluates to a <see cref="SliceValue"/>.</summary>
internal sealed class SliceExpr(Expr? start, Expr? stop, Expr? step) : Expr
{
    public override object? Eval(Scope scope) => new SliceValue(Bound(start, scope), Bound(stop, scope), Bound(step, scope));

    private static long? Bound(Expr? e, Scope scope) =>
        e?.Eval(scope) switch
        {
            null => null,
            var v when PyOps.IsInteger(v) => PyOps.AsLong(v),
            var other => throw new ChatTemplateException($"slice indices must be integers or None, not {PyOps.TypeName(other)}"),
        };
}

internal sealed record SliceValue(long? Start, long? Stop, long? Step);

internal sealed class Arguments(List<Expr> positional, List<(string Name, Expr Value)> named)
{
    public static readonly Arguments None = new([], []);

    public List<Expr> Positional { get; } = positional;

    public List<(string Name, Expr Value)> Named { get; } = named;

    public CallArguments Eval(Scope scope, object? first = null, bool hasFirst = false)
    {
        var positional = new List<object?>(Positional.Count + 1);
        if (hasFirst)
        {
            positional.Add(first);
        }

        positional.AddRange(Positional.Select(p => p.Eval(scope)));
        return new CallArguments(positional, Named.Select(n => new KeyValuePair<string, object?>(n.Name, n.Value.Eval(scope))).ToList());
    }
}

internal sealed class CallExpr(Expr callee, Arguments arguments) : Expr
{
    public Expr Callee { get; } = callee;

    public Arguments Arguments { get; } = arguments;

    public override object? Eval(Scope scope) => Runtime.Call(Callee.Eval(scope), Arguments.Eval(scope));

    /// <summary>Calls with an extra keyword argument (the <c>caller</c> of a call block).</summary>
    public object? EvalWith(Scope scope, string name, object? value)
    {
        var arguments = Arguments.Eval(scope);
        arguments.Named.Add(new KeyValuePair<string, object?>(name, value));
        return Runtime.Call(Callee.Eval(scope), arguments);
    }
}

/// <summary>A filter with its arguments, <c>|name(args)</c>.</summary>
internal sealed class FilterCall(Filters.Filter filter, Arguments arguments)
{
    public object? Apply(object? value, Scope scope) => filter(value, arguments.Eval(scope));
}

internal sealed class FilterExpr(Expr target, FilterCall call) : Expr
{
    public override object? Eval(Scope scope) => call.Apply(target.Eval(scope), scope);
}

internal sealed class TestExpr(Expr target, JinjaTests.Test test, Arguments arguments, bool negated) : Expr
{
    public override object? Eval(Scope scope) => test(target.Eval(scope), arguments.Eval(scope)) != negated;
}

internal sealed class UnaryExpr(string op, Expr operand) : Expr
{
    public override object? Eval(Scope scope)
    {
        var value = operand.Eval(scope);
        return op switch
        {
            "not" => !PyOps.Truthy(value),
            "-" => PyOps.Negate(value),
            _ => PyOps.Positive(value),
        };
    }
}

internal sealed class BinaryExpr(string op, Expr left, Expr right) : Expr
{
    public override object? Eval(Scope scope) => PyOps.Binary(op, left.Eval(scope), right.Eval(scope));
}

internal sealed class ConcatExpr(List<Expr> parts) : Expr
{
    public override object? Eval(Scope scope) => string.Concat(parts.Select(p => PyOps.Str(p.Eval(scope))));
}

internal sealed class AndExpr(Expr left, Expr right) : Expr
{
    public override object? Eval(Scope scope)
    {
        var value = left.Eval(scope);
        return PyOps.Truthy(value) ? right.Eval(scope) : value;
    }
}

internal sealed class OrExpr(Expr left, Expr right) : Expr
{
    public override object? Eval(Scope scope)
    {
        var value = left.Eval(scope);
        return PyOps.Truthy(value) ? value : right.Eval(scope);
    }
}

/// <summary>A chain of comparisons, <c>a &lt; b &lt;= c</c>, each operand evaluated once, as in Python.</summary>
internal sealed class CompareExpr(Expr first, List<(string Op, Expr Operand)> rest) : Expr
{
    public override object? Eval(Scope scope)
    {
        var left = first.Eval(scope);
        foreach (var (op, operand) in rest)
        {
            var right = operand.Eval(scope);
            if (!Compare(op, left, right))
            {
                return false;
            }

            left = right;
        }

        return true;
    }

    public static bool Compare(string op, object? left, object? right) =>
        op switch
        {
            "==" => PyOps.Equal(left, right),
            "!=" => !PyOps.Equal(left, right),
            "<" => PyOps.Compare(left, right, op) < 0,
            "<=" => PyOps.Compare(left, right, op) <= 0,
            ">" => PyOps.Compare(left, right, op) > 0,
            ">=" => PyOps.Compare(left, right, op) >= 0,
            "in" => PyOps.Contains(right, left),
            _ => !PyOps.Contains(right, left),
        };
}

internal sealed class ConditionalExpr(Expr test, Expr then, Expr? otherwise, int line) : Expr
{
    public override object? Eval(Scope scope) =>
        PyOps.Truthy(test.Eval(scope))
            ? then.Eval(scope)
            : otherwise is null
                ? Undefined.WithHint($"the inline if-expression on line {line} evaluated to false and no else section was defined.")
                : otherwise.Eval(scope);
}
