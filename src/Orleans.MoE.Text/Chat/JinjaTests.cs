namespace Orleans.MoE.Text.Chat;

/// <summary>The tests of <c>x is name(args)</c>, as Jinja2 defines them.</summary>
internal static class JinjaTests
{
    public delegate bool Test(object? value, CallArguments arguments);

    private static readonly HashSet<string> s_testNames = new(StringComparer.Ordinal);

    private static readonly Dictionary<string, Test> s_tests = new(StringComparer.Ordinal)
    {
        ["defined"] = (v, _) => v is not Undefined,
        ["undefined"] = (v, _) => v is Undefined,
        ["none"] = (v, _) => v is null,
        ["boolean"] = (v, _) => v is bool,
        ["true"] = (v, _) => v is true,
        ["false"] = (v, _) => v is false,
        ["integer"] = (v, _) => v is long,
        ["float"] = (v, _) => v is double,
        ["number"] = (v, _) => PyOps.IsNumber(v),
        ["string"] = (v, _) => v is string,
        ["mapping"] = (v, _) => v is DictValue,
        ["sequence"] = (v, _) => v is string or List<object?> or TupleValue or DictValue,
        ["iterable"] = (v, _) => v is string or List<object?> or TupleValue or DictValue or Undefined,
        ["callable"] = (v, _) => v is CallableValue,
        ["even"] = (v, _) => Integer(v, "even") % 2 == 0,
        ["odd"] = (v, _) => Integer(v, "odd") % 2 != 0,
        ["divisibleby"] = (v, a) => Integer(v, "divisibleby") % Integer(a.Get(0, "num", null), "divisibleby") == 0,
        ["lower"] = (v, _) => PyString.IsCased(PyOps.Str(v), lower: true),
        ["upper"] = (v, _) => PyString.IsCased(PyOps.Str(v), lower: false),
        ["sameas"] = (v, a) => SameAs(v, a.Get(0, "other", null)),
        ["in"] = (v, a) => PyOps.Contains(a.Get(0, "seq", null), v),
        ["filter"] = (v, _) => v is string name && Filters.Exists(name),
        ["test"] = (v, _) => v is string name && s_testNames.Contains(name),
    };

    static JinjaTests()
    {
        foreach (var (name, op) in new[] { ("eq", "=="), ("equalto", "=="), ("==", "=="), ("ne", "!="), ("!=", "!="), ("lt", "<"), ("lessthan", "<"), ("<", "<"), ("le", "<="), ("<=", "<="), ("gt", ">"), ("greaterthan", ">"), (">", ">"), ("ge", ">="), (">=", ">=") })
        {
            s_tests[name] = (v, a) => CompareExpr.Compare(op, v, a.Get(0, "other", null));
        }

        s_testNames.UnionWith(s_tests.Keys);
    }

    public static Test? Find(string name) => s_tests.GetValueOrDefault(name);

    private static long Integer(object? value, string test) =>
        PyOps.IsInteger(value) ? PyOps.AsLong(value)
        : value is double d && d == Math.Floor(d) ? (long)d
        : throw new ChatTemplateException($"test '{test}' needs a number, got {PyOps.TypeName(value)}");

    private static bool SameAs(object? a, object? b) =>
        a is null || b is null ? a is null && b is null
        : a is bool x && b is bool y ? x == y
        : ReferenceEquals(a, b);
}
