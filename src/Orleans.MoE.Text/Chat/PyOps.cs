using System.Globalization;
using System.Text;

namespace Orleans.MoE.Text.Chat;

/// <summary>Python semantics of the runtime values: truth, equality, ordering, arithmetic, str() and repr().</summary>
internal static class PyOps
{
    public static bool Truthy(object? value) =>
        value switch
        {
            null or Undefined => false,
            bool b => b,
            long l => l != 0,
            double d => d != 0,
            string s => s.Length > 0,
            List<object?> list => list.Count > 0,
            TupleValue t => t.Items.Count > 0,
            DictValue d => d.Entries.Count > 0,
            _ => true,
        };

    public static string TypeName(object? value) =>
        value switch
        {
            null => "NoneType",
            Undefined => "Undefined",
            bool => "bool",
            long => "int",
            double => "float",
            string => "str",
            List<object?> => "list",
            TupleValue => "tuple",
            DictValue => "dict",
            NamespaceValue => "Namespace",
            LoopValue => "LoopContext",
            CallableValue => "function",
            _ => value.GetType().Name,
        };

    /// <summary>Jinja2's object_type_repr, used in "has no attribute" messages.</summary>
    public static string ObjectTypeRepr(object? value) =>
        value switch
        {
            null => "None",
            NamespaceValue => "jinja2.utils.Namespace object",
            LoopValue => "jinja2.runtime.LoopContext object",
            _ => $"{TypeName(value)} object",
        };

    public static bool IsNumber(object? value) => value is bool or long or double;

    public static bool IsInteger(object? value) => value is bool or long;

    public static long AsLong(object? value) => value is bool b ? (b ? 1 : 0) : (long)value!;

    public static double AsDouble(object? value) =>
        value switch
        {
            bool b => b ? 1 : 0,
            long l => l,
            _ => (double)value!,
        };

    public static bool Equal(object? a, object? b)
    {
        if (a is null || b is null)
        {
            return a is null && b is null;
        }

        if (IsNumber(a) && IsNumber(b))
        {
            return IsInteger(a) && IsInteger(b) ? AsLong(a) == AsLong(b) : AsDouble(a) == AsDouble(b);
        }

        return (a, b) switch
        {
            (string x, string y) => string.Equals(x, y, StringComparison.Ordinal),
            (Undefined, Undefined) => true,
            (List<object?> x, List<object?> y) => SequenceEqual(x, y),
            (TupleValue x, TupleValue y) => SequenceEqual(x.Items, y.Items),
            (DictValue x, DictValue y) => x.Entries.Count == y.Entries.Count
                && x.Entries.All(e => y.Entries.TryGetValue(e.Key, out var v) && Equal(e.Value, v)),
            _ => ReferenceEquals(a, b),
        };
    }

    private static bool SequenceEqual(IReadOnlyList<object?> x, IReadOnlyList<object?> y)
    {
        if (x.Count != y.Count)
        {
            return false;
        }

        for (var i = 0; i < x.Count; i++)
        {
            if (!Equal(x[i], y[i]))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Python's ordering: numbers, strings (by code point) and sequences; anything else is a TypeError.</summary>
    public static int Compare(object? a, object? b, string op)
    {
        FailIfUndefined(a);
        FailIfUndefined(b);
        if (IsNumber(a) && IsNumber(b))
        {
            return IsInteger(a) && IsInteger(b) ? AsLong(a).CompareTo(AsLong(b)) : AsDouble(a).CompareTo(AsDouble(b));
        }

        switch (a, b)
        {
            case (string x, string y):
                return CompareCodePoints(x, y);
            case (List<object?> x, List<object?> y):
                return CompareSequences(x, y, op);
            case (TupleValue x, TupleValue y):
                return CompareSequences(x.Items, y.Items, op);
            default:
                throw new ChatTemplateException($"'{op}' not supported between instances of '{TypeName(a)}' and '{TypeName(b)}'");
        }
    }

    private static int CompareCodePoints(string x, string y)
    {
        var i = 0;
        var j = 0;
        while (i < x.Length && j < y.Length)
        {
            var cx = CodePointAt(x, i);
            var cy = CodePointAt(y, j);
            if (cx != cy)
            {
                return cx.CompareTo(cy);
            }

            i += cx > 0xFFFF ? 2 : 1;
            j += cy > 0xFFFF ? 2 : 1;
        }

        return (x.Length - i).CompareTo(y.Length - j);
    }

    private static int CodePointAt(string s, int index) =>
        char.IsHighSurrogate(s[index]) && index + 1 < s.Length && char.IsLowSurrogate(s[index + 1])
            ? char.ConvertToUtf32(s[index], s[index + 1])
            : s[index];

    private static int CompareSequences(IReadOnlyList<object?> x, IReadOnlyList<object?> y, string op)
    {
        for (var i = 0; i < Math.Min(x.Count, y.Count); i++)
        {
            if (!Equal(x[i], y[i]))
            {
                return Compare(x[i], y[i], op);
            }
        }

        return x.Count.CompareTo(y.Count);
    }

    public static void FailIfUndefined(object? value)
    {
        if (value is Undefined u)
        {
            throw u.Fail();
        }
    }

    public static bool Contains(object? container, object? item)
    {
        FailIfUndefined(item);
        switch (container)
        {
            case string s when item is string sub:
                return s.Contains(sub, StringComparison.Ordinal);
            case string:
                throw new ChatTemplateException($"'in <string>' requires string as left operand, not {TypeName(item)}");
            case DictValue d:
                return d.TryGet(item, out _);
            case Undefined:
                return false;
            case List<object?> or TupleValue:
                return Iterate(container).Any(x => Equal(x, item));
            default:
                throw new ChatTemplateException($"argument of type '{TypeName(container)}' is not iterable");
        }
    }

    /// <summary>Python's iter(): strings by code point, dicts by key; Undefined is empty.</summary>
    public static IReadOnlyList<object?> Iterate(object? value) =>
        value switch
        {
            Undefined => [],
            List<object?> list => list,
            TupleValue t => t.Items,
            DictValue d => d.Entries.Keys.Select(DictValue.FromKey).ToList(),
            string s => PyString.CodePoints(s).Cast<object?>().ToList(),
            _ => throw new ChatTemplateException($"'{TypeName(value)}' object is not iterable"),
        };

    public static long Length(object? value) =>
        value switch
        {
            Undefined => 0,
            string s => PyString.Length(s),
            List<object?> list => list.Count,
            TupleValue t => t.Items.Count,
            DictValue d => d.Entries.Count,
            _ => throw new ChatTemplateException($"object of type '{TypeName(value)}' has no len()"),
        };

    public static object? Negate(object? value) =>
        value switch
        {
            Undefined u => throw u.Fail(),
            bool or long => (object)checked(-AsLong(value)),
            double d => -d,
            _ => throw new ChatTemplateException($"bad operand type for unary -: '{TypeName(value)}'"),
        };

    public static object? Positive(object? value) =>
        value switch
        {
            Undefined u => throw u.Fail(),
            bool or long => (object)AsLong(value),
            double d => d,
            _ => throw new ChatTemplateException($"bad operand type for unary +: '{TypeName(value)}'"),
        };

    public static object? Binary(string op, object? a, object? b)
    {
        FailIfUndefined(a);
        FailIfUndefined(b);
        try
        {
            return op switch
            {
                "+" => Add(a, b),
                "-" => Numeric(op, a, b, (x, y) => x - y, (x, y) => x - y),
                "*" => Multiply(a, b),
                "/" => IsNumber(a) && IsNumber(b) ? Divide(AsDouble(a), AsDouble(b)) : throw Unsupported(op, a, b),
                "//" => FloorDivide(a, b),
                "%" => Modulo(a, b),
                "**" => Power(a, b),
                _ => throw new ChatTemplateException($"unknown operator {op}"),
            };
        }
        catch (OverflowException)
        {
            throw new ChatTemplateException($"integer overflow in {Repr(a)} {op} {Repr(b)}");
        }
    }

    private static double Divide(double x, double y) => y == 0 ? throw new ChatTemplateException("division by zero") : x / y;

    private static object Add(object? a, object? b) =>
        (a, b) switch
        {
            (string x, string y) => x + y,
            (string, _) => throw new ChatTemplateException($"can only concatenate str (not \"{TypeName(b)}\") to str"),
            (List<object?> x, List<object?> y) => new List<object?>(x.Concat(y)),
            (List<object?>, _) => throw new ChatTemplateException($"can only concatenate list (not \"{TypeName(b)}\") to list"),
            (TupleValue x, TupleValue y) => new TupleValue([.. x.Items, .. y.Items]),
            _ => Numeric("+", a, b, (x, y) => checked(x + y), (x, y) => x + y),
        };

    private static object Multiply(object? a, object? b) =>
        (a, b) switch
        {
            (string s, _) when IsInteger(b) => Repeat(s, AsLong(b)),
            (_, string s) when IsInteger(a) => Repeat(s, AsLong(a)),
            (List<object?> l, _) when IsInteger(b) => Enumerable.Repeat(l, (int)Math.Max(0, AsLong(b))).SelectMany(x => x).ToList(),
            _ => Numeric("*", a, b, (x, y) => checked(x * y), (x, y) => x * y),
        };

    private static string Repeat(string s, long count) => count <= 0 ? string.Empty : new StringBuilder().Insert(0, s, checked((int)count)).ToString();

    private static object FloorDivide(object? a, object? b)
    {
        if (IsInteger(a) && IsInteger(b))
        {
            var (x, y) = (AsLong(a), AsLong(b));
            return y == 0 ? throw new ChatTemplateException("integer division or modulo by zero") : FloorDiv(x, y);
        }

        return IsNumber(a) && IsNumber(b)
            ? AsDouble(b) == 0 ? throw new ChatTemplateException("float floor division by zero") : Math.Floor(AsDouble(a) / AsDouble(b))
            : throw Unsupported("//", a, b);
    }

    private static long FloorDiv(long x, long y)
    {
        var q = x / y;
        return (x % y != 0) && ((x < 0) != (y < 0)) ? q - 1 : q;
    }

    private static object Modulo(object? a, object? b) =>
        a is string format ? PyFormat.Percent(format, b)
        : IsInteger(a) && IsInteger(b) ? (object)IntegerModulo(AsLong(a), AsLong(b))
        : RealModulo(a, b);

    private static long IntegerModulo(long x, long y) =>
        y == 0 ? throw new ChatTemplateException("integer modulo by zero") : x - (FloorDiv(x, y) * y);

    private static double RealModulo(object? a, object? b)
    {
        if (IsNumber(a) && IsNumber(b))
        {
            var (x, y) = (AsDouble(a), AsDouble(b));
            if (y == 0)
            {
                throw new ChatTemplateException("float modulo");
            }

            var r = x % y;
            return r != 0 && (r < 0) != (y < 0) ? r + y : r;
        }

        throw Unsupported("%", a, b);
    }

    private static object Power(object? a, object? b)
    {
        if (IsInteger(a) && IsInteger(b) && AsLong(b) >= 0)
        {
            var (x, y) = (AsLong(a), AsLong(b));
            long result = 1;
            for (long i = 0; i < y; i++)
            {
                result = checked(result * x);
            }

            return result;
        }

        return IsNumber(a) && IsNumber(b) ? Math.Pow(AsDouble(a), AsDouble(b)) : throw Unsupported("**", a, b);
    }

    private static object Numeric(string op, object? a, object? b, Func<long, long, long> integer, Func<double, double, double> real)
    {
        if (IsInteger(a) && IsInteger(b))
        {
            return integer(AsLong(a), AsLong(b));
        }

        return IsNumber(a) && IsNumber(b) ? real(AsDouble(a), AsDouble(b)) : throw Unsupported(op, a, b);
    }

    private static ChatTemplateException Unsupported(string op, object? a, object? b) =>
        new($"unsupported operand type(s) for {op}: '{TypeName(a)}' and '{TypeName(b)}'");

    /// <summary>Python's str(): what <c>{{ value }}</c> prints.</summary>
    public static string Str(object? value) =>
        value switch
        {
            string s => s,
            Undefined => string.Empty,
            _ => Repr(value),
        };

    /// <summary>Python's repr().</summary>
    public static string Repr(object? value) =>
        value switch
        {
            null => "None",
            Undefined => string.Empty,
            bool b => b ? "True" : "False",
            long l => l.ToString(CultureInfo.InvariantCulture),
            double d => FloatRepr(d),
            string s => StringRepr(s),
            List<object?> list => "[" + string.Join(", ", list.Select(Repr)) + "]",
            TupleValue t => t.Items.Count == 1 ? "(" + Repr(t.Items[0]) + ",)" : "(" + string.Join(", ", t.Items.Select(Repr)) + ")",
            DictValue d => "{" + string.Join(", ", d.Entries.Select(e => Repr(DictValue.FromKey(e.Key)) + ": " + Repr(e.Value))) + "}",
            NamespaceValue ns => "<Namespace " + "{" + string.Join(", ", ns.Attributes.Select(e => StringRepr(e.Key) + ": " + Repr(e.Value))) + "}>",
            CallableValue c => $"<function {c.Name}>",
            _ => $"<{TypeName(value)} object>",
        };

    /// <summary>Python's repr(float): the shortest round-trip digits, exponent form below 1e-4 and from 1e16.</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d))
        {
            return "nan";
        }

        if (double.IsInfinity(d))
        {
            return d > 0 ? "inf" : "-inf";
        }

        if (d == 0)
        {
            return double.IsNegative(d) ? "-0.0" : "0.0";
        }

        var r = d.ToString("R", CultureInfo.InvariantCulture);
        var negative = r[0] == '-';
        if (negative)
        {
            r = r[1..];
        }

        var exponent = 0;
        var e = r.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            exponent = int.Parse(r.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            r = r[..e];
        }

        var dot = r.IndexOf('.', StringComparison.Ordinal);
        var digits = dot < 0 ? r : r.Remove(dot, 1);
        var point = (dot < 0 ? r.Length : dot) + exponent;
        var leading = digits.Length - digits.TrimStart('0').Length;
        digits = digits.Trim('0');
        point -= leading;

        string body;
        if (point <= -4 || point > 16)
        {
            var mantissa = digits.Length > 1 ? digits[0] + "." + digits[1..] : digits;
            var exp = point - 1;
            body = mantissa + "e" + (exp < 0 ? "-" : "+") + Math.Abs(exp).ToString("00", CultureInfo.InvariantCulture);
        }
        else if (point <= 0)
        {
            body = "0." + new string('0', -point) + digits;
        }
        else if (point >= digits.Length)
        {
            body = digits + new string('0', point - digits.Length) + ".0";
        }
        else
        {
            body = digits[..point] + "." + digits[point..];
        }

        return negative ? "-" + body : body;
    }

    public static string StringRepr(string s)
    {
        var quote = s.Contains('\'', StringComparison.Ordinal) && !s.Contains('"', StringComparison.Ordinal) ? '"' : '\'';
        var builder = new StringBuilder(s.Length + 2).Append(quote);
        foreach (var rune in s.EnumerateRunes())
        {
            var c = rune.Value;
            switch (c)
            {
                case '\\':
                    builder.Append("\\\\");
                    break;
                case '\n':
                    builder.Append("\\n");
                    break;
                case '\r':
                    builder.Append("\\r");
                    break;
                case '\t':
                    builder.Append("\\t");
                    break;
                default:
                    if (c == quote)
                    {
                        builder.Append('\\').Append(quote);
                    }
                    else if (IsPrintable(rune))
                    {
                        builder.Append(rune.ToString());
                    }
                    else
                    {
                        builder.Append(c < 0x100 ? $"\\x{c:x2}" : c < 0x10000 ? $"\\u{c:x4}" : $"\\U{c:x8}");
                    }

                    break;
            }
        }

        return builder.Append(quote).ToString();
    }

    /// <summary>Python's str.isprintable for one code point.</summary>
    private static bool IsPrintable(Rune rune)
    {
        if (rune.Value == ' ')
        {
            return true;
        }

        return Rune.GetUnicodeCategory(rune) is not (UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
            or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator
            or UnicodeCategory.ParagraphSeparator or UnicodeCategory.SpaceSeparator);
    }
}
