using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Orleans.MoE.Text.Chat;

/// <summary>The filters of <c>value|name(args)</c>: Jinja2's built-ins that chat templates use, and transformers' tojson.</summary>
internal static partial class Filters
{
    public delegate object? Filter(object? value, CallArguments arguments);

    private static readonly Dictionary<string, Filter> s_filters = new(StringComparer.Ordinal)
    {
        ["abs"] = Abs,
        ["attr"] = (v, a) =>
        {
            a.Expect("attr", "name");
            return Runtime.GetPythonAttribute(v, PyOps.Str(a.Get(0, "name", null)));
        },
        ["capitalize"] = (v, a) => Unary(a, "capitalize", () => PyString.Capitalize(PyOps.Str(v))),
        ["count"] = (v, a) => Length(v, a),
        ["d"] = Default,
        ["default"] = Default,
        ["dictsort"] = (v, a) => DictSort(v, a),
        ["first"] = (v, a) => Edge(v, a, last: false),
        ["float"] = ToFloat,
        ["format"] = (v, a) =>
        {
            if (a.Positional.Count > 0 && a.Named.Count > 0)
            {
                throw new ChatTemplateException("can't handle positional and keyword arguments at the same time");
            }

            object? values = new TupleValue(a.Positional);
            if (a.Named.Count > 0)
            {
                var named = new DictValue();
                a.Named.ForEach(p => named.Set(p.Key, p.Value));
                values = named;
            }

            return PyFormat.Percent(PyOps.Str(v), values);
        },
        ["indent"] = (v, a) => Indent(v, a),
        ["int"] = ToInt,
        ["items"] = (v, a) => Items(v, a),
        ["join"] = (v, a) => Join(v, a),
        ["last"] = (v, a) => Edge(v, a, last: true),
        ["length"] = (v, a) => Length(v, a),
        ["list"] = (v, a) => Unary(a, "list", () => PyOps.Iterate(v).ToList()),
        ["lower"] = (v, a) => Unary(a, "lower", () => PyString.Lower(PyOps.Str(v))),
        ["map"] = (v, a) => Map(v, a),
        ["max"] = (v, a) => MinMax(v, a, "max"),
        ["min"] = (v, a) => MinMax(v, a, "min"),
        ["reject"] = (v, a) => Select(v, a, "reject", attribute: false, keep: false),
        ["rejectattr"] = (v, a) => Select(v, a, "rejectattr", attribute: true, keep: false),
        ["replace"] = (v, a) => Replace(v, a),
        ["reverse"] = Reverse,
        ["round"] = Round,
        ["safe"] = (v, a) => Unary(a, "safe", () => PyOps.Str(v)),
        ["select"] = (v, a) => Select(v, a, "select", attribute: false, keep: true),
        ["selectattr"] = (v, a) => Select(v, a, "selectattr", attribute: true, keep: true),
        ["sort"] = (v, a) => Sort(v, a),
        ["string"] = (v, a) => Unary(a, "string", () => PyOps.Str(v)),
        ["sum"] = Sum,
        ["title"] = (v, a) => Unary(a, "title", () => Title(PyOps.Str(v))),
        ["tojson"] = (v, a) => ToJson(v, a),
        ["trim"] = (v, a) =>
        {
            a.Expect("trim", "chars");
            return PyString.Strip(PyOps.Str(v), a.Get(0, "chars", null) is { } chars ? PyOps.Str(chars) : null, true, true);
        },
        ["unique"] = (v, a) => Unique(v, a),
        ["upper"] = (v, a) => Unary(a, "upper", () => PyString.Upper(PyOps.Str(v))),
        ["wordcount"] = (v, a) => Unary(a, "wordcount", () => (long)WordPattern().Count(PyOps.Str(v))),
    };

    public static Filter? Find(string name) => s_filters.GetValueOrDefault(name);

    public static bool Exists(string name) => s_filters.ContainsKey(name);

    private static object? Unary(CallArguments arguments, string name, Func<object?> body)
    {
        arguments.Expect(name);
        return body();
    }

    private static object? Abs(object? value, CallArguments arguments)
    {
        arguments.Expect("abs");
        return value switch
        {
            bool or long => (object)Math.Abs(PyOps.AsLong(value)),
            double d => Math.Abs(d),
            _ => throw new ChatTemplateException($"bad operand type for abs(): '{PyOps.TypeName(value)}'"),
        };
    }

    private static long Length(object? value, CallArguments arguments)
    {
        arguments.Expect("length");
        return PyOps.Length(value);
    }

    private static object? Default(object? value, CallArguments arguments)
    {
        arguments.Expect("default", "default_value", "boolean");
        var fallback = arguments.Get(0, "default_value", string.Empty);
        var boolean = PyOps.Truthy(arguments.Get(1, "boolean", false));
        return value is Undefined || (boolean && !PyOps.Truthy(value)) ? fallback : value;
    }

    /// <summary>The first or last item; Undefined when there is none.</summary>
    private static object? Edge(object? value, CallArguments arguments, bool last)
    {
        arguments.Expect(last ? "last" : "first");
        var items = PyOps.Iterate(value);
        if (items.Count == 0)
        {
            return Undefined.WithHint($"No {(last ? "last" : "first")} item, sequence was empty.");
        }

        return items[last ? items.Count - 1 : 0];
    }

    private static object? ToInt(object? value, CallArguments arguments)
    {
        arguments.Expect("int", "default", "base");
        var fallback = arguments.Get(0, "default", 0L);
        var numberBase = arguments.Get(1, "base", 10L);
        switch (value)
        {
            case bool or long:
                return PyOps.AsLong(value);
            case double d:
                return double.IsFinite(d) ? (long)Math.Truncate(d) : fallback;
            case string s:
                var text = s.Trim().Replace("_", string.Empty, StringComparison.Ordinal);
                if (PyOps.AsLong(numberBase) == 10 && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var parsed))
                {
                    return parsed;
                }

                if (PyOps.AsLong(numberBase) == 16 && long.TryParse(text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? text[2..] : text, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hex))
                {
                    return hex;
                }

                return TryFloat(s, out var real) && double.IsFinite(real) ? (long)Math.Truncate(real) : fallback;
            default:
                return fallback;
        }
    }

    private static bool TryFloat(string s, out double value)
    {
        var text = s.Trim().Replace("_", string.Empty, StringComparison.Ordinal);
        switch (text.ToLowerInvariant())
        {
            case "nan" or "+nan" or "-nan":
                value = double.NaN;
                return true;
            case "inf" or "+inf" or "infinity" or "+infinity":
                value = double.PositiveInfinity;
                return true;
            case "-inf" or "-infinity":
                value = double.NegativeInfinity;
                return true;
        }

        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
    }

    private static object? ToFloat(object? value, CallArguments arguments)
    {
        arguments.Expect("float", "default");
        var fallback = arguments.Get(0, "default", 0.0);
        return value switch
        {
            bool or long or double => PyOps.AsDouble(value),
            string s when TryFloat(s, out var parsed) => parsed,
            _ => fallback,
        };
    }

    private static string Indent(object? value, CallArguments arguments)
    {
        arguments.Expect("indent", "width", "first", "blank");
        var width = arguments.Get(0, "width", 4L);
        var indentation = width is string s ? s : new string(' ', (int)PyOps.AsLong(width));
        var first = PyOps.Truthy(arguments.Get(1, "first", false));
        var blank = PyOps.Truthy(arguments.Get(2, "blank", false));
        var lines = PyString.SplitLines(PyOps.Str(value) + "\n");
        string result;
        if (blank)
        {
            result = string.Join("\n" + indentation, lines);
        }
        else
        {
            result = lines[0];
            if (lines.Count > 1)
            {
                result += "\n" + string.Join("\n", lines.Skip(1).Select(line => line.Length > 0 ? indentation + line : line));
            }
        }

        return first ? indentation + result : result;
    }

    private static List<object?> Items(object? value, CallArguments arguments)
    {
        arguments.Expect("items");
        return value switch
        {
            Undefined => new List<object?>(),
            DictValue d => d.Entries.Select(e => (object?)new TupleValue([DictValue.FromKey(e.Key), e.Value])).ToList(),
            _ => throw new ChatTemplateException("Can only get item pairs from a mapping."),
        };
    }

    private static string Join(object? value, CallArguments arguments)
    {
        arguments.Expect("join", "d", "attribute");
        var separator = PyOps.Str(arguments.Get(0, "d", string.Empty));
        IEnumerable<object?> items = PyOps.Iterate(value);
        if (arguments.Get(1, "attribute", null) is { } attribute)
        {
            var getter = AttributeGetter(attribute, null);
            items = items.Select(getter);
        }

        return string.Join(separator, items.Select(PyOps.Str));
    }

    private static List<object?> Map(object? value, CallArguments arguments)
    {
        var items = PyOps.Iterate(value);
        if (arguments.Named.Exists(p => p.Key == "attribute"))
        {
            arguments.Expect("map", "attribute", "default");
            var fallback = arguments.Named.FindIndex(p => p.Key == "default");
            var getter = AttributeGetter(arguments.Named.First(p => p.Key == "attribute").Value!, fallback >= 0 ? new DefaultBox(arguments.Named[fallback].Value) : null);
            return items.Select(getter).ToList();
        }

        if (arguments.Positional.Count == 0 || arguments.Positional[0] is not string name)
        {
            throw new ChatTemplateException("map requires a filter name or attribute=");
        }

        var filter = Find(name) ?? throw new ChatTemplateException($"No filter named '{name}'.");
        var rest = new CallArguments(arguments.Positional.Skip(1).ToList(), arguments.Named);
        return items.Select(item => filter(item, rest)).ToList();
    }

    private sealed record DefaultBox(object? Value);

    /// <summary>Jinja2's make_attrgetter: a dotted path of attributes or integer indexes, looked up as items.</summary>
    private static Func<object?, object?> AttributeGetter(object attribute, DefaultBox? fallback)
    {
        var parts = attribute is string path
            ? path.Split('.').Select(p => long.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? (object)n : p).ToArray()
            : [attribute];
        return item =>
        {
            var current = item;
            foreach (var part in parts)
            {
                current = Runtime.GetItem(current, part);
            }

            return fallback is not null && current is Undefined ? fallback.Value : current;
        };
    }

    private static List<object?> Select(object? value, CallArguments arguments, string name, bool attribute, bool keep)
    {
        var positional = arguments.Positional;
        var index = 0;
        Func<object?, object?> getter = x => x;
        if (attribute)
        {
            if (positional.Count == 0)
            {
                throw new ChatTemplateException($"{name}() missing the attribute argument");
            }

            getter = AttributeGetter(positional[index++]!, null);
        }

        Func<object?, bool> predicate;
        if (index < positional.Count)
        {
            var testName = PyOps.Str(positional[index++]);
            var test = JinjaTests.Find(testName) ?? throw new ChatTemplateException($"No test named '{testName}'.");
            var rest = new CallArguments(positional.Skip(index).ToList(), arguments.Named);
            predicate = x => test(x, rest);
        }
        else
        {
            predicate = PyOps.Truthy;
        }

        return PyOps.Iterate(value).Where(item => predicate(getter(item)) == keep).ToList();
    }

    private static string Replace(object? value, CallArguments arguments)
    {
        arguments.Expect("replace", "old", "new", "count");
        var count = arguments.Get(2, "count", null);
        return PyString.Replace(PyOps.Str(value), PyOps.Str(arguments.Get(0, "old", null)), PyOps.Str(arguments.Get(1, "new", null)), count is null ? -1 : PyOps.AsLong(count));
    }

    private static object? Reverse(object? value, CallArguments arguments)
    {
        arguments.Expect("reverse");
        if (value is string s)
        {
            var points = PyString.CodePoints(s);
            Array.Reverse(points);
            return string.Concat(points);
        }

        var items = PyOps.Iterate(value).ToList();
        items.Reverse();
        return items;
    }

    private static object? Round(object? value, CallArguments arguments)
    {
        arguments.Expect("round", "precision", "method");
        var precision = (int)PyOps.AsLong(arguments.Get(0, "precision", 0L));
        var method = PyOps.Str(arguments.Get(1, "method", "common"));
        if (!PyOps.IsNumber(value))
        {
            throw new ChatTemplateException($"type {PyOps.TypeName(value)} doesn't define __round__ method");
        }

        var x = PyOps.AsDouble(value);
        var scale = Math.Pow(10, precision);
        return method switch
        {
            "common" when PyOps.IsInteger(value) && precision >= 0 => (object)PyOps.AsLong(value),
            "common" => PyFormat.Round(x, precision),
            "ceil" => Math.Ceiling(x * scale) / scale,
            "floor" => Math.Floor(x * scale) / scale,
            _ => throw new ChatTemplateException("method must be common, ceil or floor"),
        };
    }

    private static Func<object?, object?> SortKey(CallArguments arguments, int attributeIndex, int caseIndex)
    {
        var caseSensitive = PyOps.Truthy(arguments.Get(caseIndex, "case_sensitive", false));
        var attribute = arguments.Get(attributeIndex, "attribute", null);
        var getter = attribute is null ? (x => x) : AttributeGetter(attribute, null);
        return x =>
        {
            var key = getter(x);
            return !caseSensitive && key is string s ? s.ToLowerInvariant() : key;
        };
    }

    private static List<object?> Sort(object? value, CallArguments arguments)
    {
        arguments.Expect("sort", "reverse", "case_sensitive", "attribute");
        var reverse = PyOps.Truthy(arguments.Get(0, "reverse", false));
        var key = SortKey(arguments, 2, 1);
        var items = PyOps.Iterate(value).Select(x => (Key: key(x), Item: x)).ToList();
        var comparer = Comparer<(object? Key, object? Item)>.Create((a, b) => PyOps.Compare(a.Key, b.Key, "<"));

        // Both orderings are stable, as Python's sort (reverse=True keeps equal items in their original order).
        var sorted = reverse ? items.OrderDescending(comparer) : items.Order(comparer);
        return sorted.Select(x => x.Item).ToList();
    }

    private static List<object?> DictSort(object? value, CallArguments arguments)
    {
        arguments.Expect("dictsort", "case_sensitive", "by", "reverse");
        if (value is not DictValue d)
        {
            throw new ChatTemplateException("dictsort expects a mapping");
        }

        var caseSensitive = PyOps.Truthy(arguments.Get(0, "case_sensitive", false));
        var byValue = PyOps.Str(arguments.Get(1, "by", "key")) == "value";
        var reverse = PyOps.Truthy(arguments.Get(2, "reverse", false));
        var pairs = d.Entries.Select(e => new TupleValue([DictValue.FromKey(e.Key), e.Value])).ToList();
        object? Key(TupleValue t)
        {
            var k = t.Items[byValue ? 1 : 0];
            return !caseSensitive && k is string s ? s.ToLowerInvariant() : k;
        }

        var comparer = Comparer<TupleValue>.Create((a, b) => PyOps.Compare(Key(a), Key(b), "<"));
        return (reverse ? pairs.OrderDescending(comparer) : pairs.Order(comparer)).Cast<object?>().ToList();
    }

    private static object? MinMax(object? value, CallArguments arguments, string name)
    {
        arguments.Expect(name, "case_sensitive", "attribute");
        var key = SortKey(arguments, 1, 0);
        var items = PyOps.Iterate(value);
        if (items.Count == 0)
        {
            return Undefined.WithHint($"No aggregated item, sequence was empty.");
        }

        var best = items[0];
        foreach (var item in items.Skip(1))
        {
            var order = PyOps.Compare(key(item), key(best), "<");
            if (name == "max" ? order > 0 : order < 0)
            {
                best = item;
            }
        }

        return best;
    }

    private static object? Sum(object? value, CallArguments arguments)
    {
        arguments.Expect("sum", "attribute", "start");
        var attribute = arguments.Get(0, "attribute", null);
        var getter = attribute is null ? (x => x) : AttributeGetter(attribute, null);
        var total = arguments.Get(1, "start", 0L);
        foreach (var item in PyOps.Iterate(value))
        {
            total = PyOps.Binary("+", total, getter(item));
        }

        return total;
    }

    private static string ToJson(object? value, CallArguments arguments)
    {
        arguments.Expect("tojson", "ensure_ascii", "indent", "separators", "sort_keys");
        var ensureAscii = PyOps.Truthy(arguments.Get(0, "ensure_ascii", false));
        var indent = arguments.Get(1, "indent", null) switch
        {
            null => null,
            string s => s,
            var n when PyOps.IsInteger(n) => new string(' ', (int)Math.Max(0, PyOps.AsLong(n))),
            var other => throw new ChatTemplateException($"tojson indent must be an integer or a string, not {PyOps.TypeName(other)}"),
        };
        var (itemSeparator, keySeparator) = indent is null ? (", ", ": ") : (",", ": ");
        if (arguments.Get(2, "separators", null) is { } separators)
        {
            var pair = PyOps.Iterate(separators);
            if (pair.Count != 2 || pair[0] is not string item || pair[1] is not string key)
            {
                throw new ChatTemplateException("tojson separators must be a pair of strings");
            }

            (itemSeparator, keySeparator) = (item, key);
        }

        return Json.Dumps(value, indent, itemSeparator, keySeparator, PyOps.Truthy(arguments.Get(3, "sort_keys", false)), ensureAscii);
    }

    private static List<object?> Unique(object? value, CallArguments arguments)
    {
        arguments.Expect("unique", "case_sensitive", "attribute");
        var key = SortKey(arguments, 1, 0);
        var seen = new List<object?>();
        var result = new List<object?>();
        foreach (var item in PyOps.Iterate(value))
        {
            var k = key(item);
            if (!seen.Exists(s => PyOps.Equal(s, k)))
            {
                seen.Add(k);
                result.Add(item);
            }
        }

        return result;
    }

    /// <summary>Jinja2's title filter: each word (split at whitespace, '-', and opening brackets) capitalised.</summary>
    private static string Title(string s)
    {
        var builder = new StringBuilder();
        foreach (var part in WordBeginning().Split(s))
        {
            if (part.Length > 0)
            {
                builder.Append(PyString.Upper(part[..1])).Append(PyString.Lower(part[1..]));
            }
        }

        return builder.ToString();
    }

    [GeneratedRegex(@"([-\s({\[<]+)")]
    private static partial Regex WordBeginning();

    [GeneratedRegex(@"\w+")]
    private static partial Regex WordPattern();
}
