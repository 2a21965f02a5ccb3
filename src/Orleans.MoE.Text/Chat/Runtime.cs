using System.Globalization;
using System.Text;

namespace Orleans.MoE.Text.Chat;

/// <summary>
/// Attribute and item access, calls, and the methods of str, dict and list, as Jinja2's
/// ImmutableSandboxedEnvironment allows them (methods that modify a list or dict are unsafe there).
/// </summary>
internal static class Runtime
{
    private static readonly HashSet<string> s_unsafeListMethods = new(StringComparer.Ordinal) { "append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort" };
    private static readonly HashSet<string> s_unsafeDictMethods = new(StringComparer.Ordinal) { "clear", "pop", "popitem", "setdefault", "update" };
    private static readonly HashSet<string> s_dictMethods = new(StringComparer.Ordinal) { "copy", "get", "items", "keys", "values" };

    public static object? GetAttribute(object? target, string name)
    {
        switch (target)
        {
            case Undefined u:
                throw u.Fail();
            case DictValue d:
                return DictMethod(d, name) ?? (d.TryGet(name, out var value) ? value : Undefined.Member(d, name));
            case NamespaceValue ns:
                return ns.Attributes.TryGetValue(name, out var attribute) ? attribute : Undefined.Member(ns, name);
            case LoopValue loop:
                loop.TryGetAttribute(name, out var loopAttribute);
                return loopAttribute;
            case string s:
                return (object?)StringMethod(s, name) ?? Undefined.Member(s, name);
            case List<object?> list:
                return SequenceMethod(list, list, name) ?? Undefined.Member(list, name);
            case TupleValue tuple:
                return SequenceMethod(tuple, tuple.Items, name) ?? Undefined.Member(tuple, name);
            default:
                return Undefined.Member(target, name);
        }
    }

    /// <summary>Python's getattr only (the attr filter): a dict's keys are not attributes.</summary>
    public static object? GetPythonAttribute(object? target, string name) =>
        target is DictValue d ? DictMethod(d, name) ?? Undefined.Member(d, name) : GetAttribute(target, name);

    public static object? GetItem(object? target, object? key)
    {
        switch (target)
        {
            case Undefined u:
                throw u.Fail();
            case DictValue d:
                return d.TryGet(key, out var value) ? value : key is string name ? GetAttribute(d, name) : Undefined.Member(d, key);
            case string s:
                return key switch
                {
                    SliceValue slice => PyString.Slice(s, slice.Start, slice.Stop, slice.Step),
                    bool or long => PyString.Index(s, PyOps.AsLong(key)) ?? Undefined.Member(s, key),
                    string member => GetAttribute(s, member),
                    _ => Undefined.Member(s, key),
                };
            case List<object?> list:
                return key switch
                {
                    SliceValue slice => Slicing.Indices(list.Count, slice.Start, slice.Stop, slice.Step).Select(i => list[i]).ToList(),
                    bool or long => Index(list, key),
                    string member => GetAttribute(list, member),
                    _ => Undefined.Member(list, key),
                };
            case TupleValue tuple:
                return key switch
                {
                    SliceValue slice => new TupleValue(Slicing.Indices(tuple.Items.Count, slice.Start, slice.Stop, slice.Step).Select(i => tuple.Items[i]).ToArray()),
                    bool or long => Index(tuple.Items, key),
                    string member => GetAttribute(tuple, member),
                    _ => Undefined.Member(tuple, key),
                };
            default:
                return key is string attribute ? GetAttribute(target, attribute) : Undefined.Member(target, key);
        }
    }

    private static object? Index(IReadOnlyList<object?> items, object key)
    {
        var index = PyOps.AsLong(key);
        if (index < 0)
        {
            index += items.Count;
        }

        return index >= 0 && index < items.Count ? items[(int)index] : Undefined.Member(items, key);
    }

    public static object? Call(object? callee, CallArguments arguments) =>
        callee switch
        {
            CallableValue callable => callable.Call(arguments),
            Undefined u => throw u.Fail(),
            _ => throw new ChatTemplateException($"'{PyOps.TypeName(callee)}' object is not callable"),
        };

    private static Undefined Unsafe(object target, string name) =>
        Undefined.WithHint($"access to attribute '{name}' of '{PyOps.TypeName(target)}' object is unsafe.");

    private static object? DictMethod(DictValue d, string name)
    {
        if (s_unsafeDictMethods.Contains(name))
        {
            return Unsafe(d, name);
        }

        if (!s_dictMethods.Contains(name))
        {
            return null;
        }

        return new BuiltinFunction(name, args =>
        {
            switch (name)
            {
                case "get":
                    args.Expect("get", "key", "default");
                    return d.TryGet(args.Get(0, "key", null), out var found) ? found : args.Get(1, "default", null);
                case "items":
                    args.Expect("items");
                    return d.Entries.Select(e => (object?)new TupleValue([DictValue.FromKey(e.Key), e.Value])).ToList();
                case "keys":
                    args.Expect("keys");
                    return d.Entries.Keys.Select(DictValue.FromKey).ToList();
                case "values":
                    args.Expect("values");
                    return d.Entries.Values.ToList();
                default:
                    args.Expect("copy");
                    var copy = new DictValue();
                    foreach (var (key, value) in d.Entries)
                    {
                        copy.Entries[key] = value;
                    }

                    return copy;
            }
        });
    }

    private static object? SequenceMethod(object target, IReadOnlyList<object?> items, string name)
    {
        if (target is List<object?> && s_unsafeListMethods.Contains(name))
        {
            return Unsafe(target, name);
        }

        return name switch
        {
            "index" => new BuiltinFunction(name, args =>
            {
                args.Expect("index", "value");
                var value = args.Get(0, "value", null);
                for (var i = 0; i < items.Count; i++)
                {
                    if (PyOps.Equal(items[i], value))
                    {
                        return (long)i;
                    }
                }

                throw new ChatTemplateException($"{PyOps.Repr(value)} is not in {PyOps.TypeName(target)}");
            }),
            "count" => new BuiltinFunction(name, args =>
            {
                args.Expect("count", "value");
                var value = args.Get(0, "value", null);
                return (long)items.Count(x => PyOps.Equal(x, value));
            }),
            "copy" when target is List<object?> list => new BuiltinFunction(name, _ => new List<object?>(list)),
            _ => null,
        };
    }

    private static string Text(object? value, string function) =>
        value as string ?? throw new ChatTemplateException($"{function}() argument must be str, not {PyOps.TypeName(value)}");

    private static string? OptionalText(object? value, string function) => value is null ? null : Text(value, function);

    private static long Integer(object? value, string function) =>
        PyOps.IsInteger(value) ? PyOps.AsLong(value) : throw new ChatTemplateException($"{function}() argument must be int, not {PyOps.TypeName(value)}");

    /// <summary>A bound method of a str, or null when str has no method of that name.</summary>
    private static BuiltinFunction? StringMethod(string s, string name)
    {
        Func<CallArguments, object?>? body = name switch
        {
            "strip" or "lstrip" or "rstrip" => args =>
            {
                args.Expect(name, "chars");
                return PyString.Strip(s, OptionalText(args.Get(0, "chars", null), name), name != "rstrip", name != "lstrip");
            },
            "split" or "rsplit" => args =>
            {
                args.Expect(name, "sep", "maxsplit");
                return PyString.Split(s, OptionalText(args.Get(0, "sep", null), name), Integer(args.Get(1, "maxsplit", -1L), name), name == "rsplit");
            },
            "splitlines" => args =>
            {
                args.Expect(name);
                return PyString.SplitLines(s).Cast<object?>().ToList();
            },
            "startswith" or "endswith" => args =>
            {
                args.Expect(name, "prefix", "start", "end");
                var text = args.Has(1, "start") || args.Has(2, "end")
                    ? PyString.Slice(s, OptionalInteger(args.Get(1, "start", null)), OptionalInteger(args.Get(2, "end", null)), null)
                    : s;
                var candidates = args.Get(0, "prefix", null) is TupleValue tuple ? tuple.Items : [args.Get(0, "prefix", null)];
                return candidates.Any(c => name == "startswith"
                    ? text.StartsWith(Text(c, name), StringComparison.Ordinal)
                    : text.EndsWith(Text(c, name), StringComparison.Ordinal));
            },
            "upper" => args =>
            {
                args.Expect(name);
                return PyString.Upper(s);
            },
            "lower" => args =>
            {
                args.Expect(name);
                return PyString.Lower(s);
            },
            "title" => args =>
            {
                args.Expect(name);
                return PyString.Title(s);
            },
            "capitalize" => args =>
            {
                args.Expect(name);
                return PyString.Capitalize(s);
            },
            "replace" => args =>
            {
                args.Expect(name, "old", "new", "count");
                return PyString.Replace(s, Text(args.Get(0, "old", null), name), Text(args.Get(1, "new", null), name), Integer(args.Get(2, "count", -1L), name));
            },
            "find" or "rfind" or "index" or "rindex" => args =>
            {
                args.Expect(name, "sub");
                var at = PyString.Find(s, Text(args.Get(0, "sub", null), name), name is "rfind" or "rindex");
                return at < 0 && name is "index" or "rindex" ? throw new ChatTemplateException("substring not found") : at;
            },
            "count" => args =>
            {
                args.Expect(name, "sub");
                return PyString.Count(s, Text(args.Get(0, "sub", null), name));
            },
            "join" => args =>
            {
                args.Expect(name, "iterable");
                var parts = PyOps.Iterate(args.Get(0, "iterable", null)).Select((item, i) =>
                    item as string ?? throw new ChatTemplateException($"sequence item {i}: expected str instance, {PyOps.TypeName(item)} found"));
                return string.Join(s, parts);
            },
            "format" => args => PyString.Format(s, args),
            "removeprefix" => args =>
            {
                args.Expect(name, "prefix");
                var prefix = Text(args.Get(0, "prefix", null), name);
                return s.StartsWith(prefix, StringComparison.Ordinal) ? s[prefix.Length..] : s;
            },
            "removesuffix" => args =>
            {
                args.Expect(name, "suffix");
                var suffix = Text(args.Get(0, "suffix", null), name);
                return suffix.Length > 0 && s.EndsWith(suffix, StringComparison.Ordinal) ? s[..^suffix.Length] : s;
            },
            "isdigit" or "isnumeric" or "isdecimal" => args => Classify(args, name, s, r => Rune.IsDigit(r)),
            "isalpha" => args => Classify(args, name, s, Rune.IsLetter),
            "isalnum" => args => Classify(args, name, s, Rune.IsLetterOrDigit),
            "isspace" => args => Classify(args, name, s, r => r.IsBmp && PyString.IsSpace((char)r.Value)),
            "islower" => args => Cased(args, name, s, lower: true),
            "isupper" => args => Cased(args, name, s, lower: false),
            "center" or "ljust" or "rjust" => args =>
            {
                args.Expect(name, "width", "fillchar");
                return Pad(s, Integer(args.Get(0, "width", null), name), Text(args.Get(1, "fillchar", " "), name), name);
            },
            _ => null,
        };
        return body is null ? null : new BuiltinFunction(name, body);
    }

    private static long? OptionalInteger(object? value) => value is null ? null : Integer(value, "slice");

    private static bool Classify(CallArguments args, string name, string s, Func<Rune, bool> predicate)
    {
        args.Expect(name);
        return s.Length > 0 && s.EnumerateRunes().All(predicate);
    }

    private static bool Cased(CallArguments args, string name, string s, bool lower)
    {
        args.Expect(name);
        return PyString.IsCased(s, lower);
    }

    private static string Pad(string s, long width, string fill, string name)
    {
        if (PyString.Length(fill) != 1)
        {
            throw new ChatTemplateException("The fill character must be exactly one character long");
        }

        var length = PyString.Length(s);
        if (width <= length)
        {
            return s;
        }

        var total = (int)(width - length);
        var left = name switch
        {
            "ljust" => 0,
            "rjust" => total,
            _ => (total / 2) + (total & (int)width & 1),
        };
        return string.Concat(Enumerable.Repeat(fill, left)) + s + string.Concat(Enumerable.Repeat(fill, total - left));
    }

    /// <summary>The functions every template sees besides the variables it is rendered with.</summary>
    public static void AddGlobals(Scope scope)
    {
        scope.Set("range", new BuiltinFunction("range", args => Range(args)));
        scope.Set("dict", new BuiltinFunction("dict", args =>
        {
            var dict = new DictValue();
            foreach (var source in args.Positional)
            {
                CopyPairs(source, dict.Set);
            }

            foreach (var (key, value) in args.Named)
            {
                dict.Set(key, value);
            }

            return dict;
        }));
        scope.Set("namespace", new BuiltinFunction("namespace", args =>
        {
            var ns = new NamespaceValue();
            foreach (var source in args.Positional)
            {
                CopyPairs(source, (key, value) => ns.Attributes[PyOps.Str(key)] = value);
            }

            foreach (var (key, value) in args.Named)
            {
                ns.Attributes[key] = value;
            }

            return ns;
        }));
        scope.Set("raise_exception", new BuiltinFunction("raise_exception", args =>
            throw new ChatTemplateException(PyOps.Str(args.Get(0, "message", string.Empty)), raisedByTemplate: true)));
        scope.Set("strftime_now", new BuiltinFunction("strftime_now", args =>
            Strftime(DateTime.Now, Text(args.Get(0, "format", null), "strftime_now"))));
    }

    private static void CopyPairs(object? source, Action<object?, object?> add)
    {
        if (source is DictValue d)
        {
            foreach (var (key, value) in d.Entries)
            {
                add(DictValue.FromKey(key), value);
            }

            return;
        }

        foreach (var pair in PyOps.Iterate(source))
        {
            var items = PyOps.Iterate(pair);
            if (items.Count != 2)
            {
                throw new ChatTemplateException($"dictionary update sequence element has length {items.Count}; 2 is required");
            }

            add(items[0], items[1]);
        }
    }

    private static List<object?> Range(CallArguments args)
    {
        var numbers = args.Positional.Select(a => Integer(a, "range")).ToArray();
        var (start, stop, step) = numbers.Length switch
        {
            1 => (0L, numbers[0], 1L),
            2 => (numbers[0], numbers[1], 1L),
            3 => (numbers[0], numbers[1], numbers[2]),
            _ => throw new ChatTemplateException($"range expected 1 to 3 arguments, got {numbers.Length}"),
        };
        if (step == 0)
        {
            throw new ChatTemplateException("range() arg 3 must not be zero");
        }

        var result = new List<object?>();
        for (var i = start; step > 0 ? i < stop : i > stop; i += step)
        {
            if (result.Count >= 100_000)
            {
                throw new ChatTemplateException("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
            }

            result.Add(i);
        }

        return result;
    }

    /// <summary>Python's datetime.strftime for a naive local time (so <c>%z</c> and <c>%Z</c> are empty), C locale; <c>%-d</c> drops padding as glibc does.</summary>
    public static string Strftime(DateTime time, string format)
    {
        var c = CultureInfo.InvariantCulture;
        var builder = new StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length)
            {
                builder.Append(format[i]);
                continue;
            }

            var unpadded = format[i + 1] == '-' && i + 2 < format.Length;
            var code = format[unpadded ? i + 2 : i + 1];
            i += unpadded ? 2 : 1;
            var hour12 = time.Hour % 12 == 0 ? 12 : time.Hour % 12;
            string field = code switch
            {
                'a' => time.ToString("ddd", c),
                'A' => time.ToString("dddd", c),
                'w' => ((int)time.DayOfWeek).ToString(c),
                'd' => time.Day.ToString("00", c),
                'e' => time.Day.ToString(c).PadLeft(2),
                'b' or 'h' => time.ToString("MMM", c),
                'B' => time.ToString("MMMM", c),
                'm' => time.Month.ToString("00", c),
                'y' => (time.Year % 100).ToString("00", c),
                'Y' => time.Year.ToString(c),
                'H' => time.Hour.ToString("00", c),
                'I' => hour12.ToString("00", c),
                'p' => time.Hour < 12 ? "AM" : "PM",
                'M' => time.Minute.ToString("00", c),
                'S' => time.Second.ToString("00", c),
                'f' => (time.Ticks % TimeSpan.TicksPerSecond / 10).ToString("000000", c),
                'j' => time.DayOfYear.ToString("000", c),
                'z' or 'Z' => string.Empty,
                'c' => Strftime(time, "%a %b %e %H:%M:%S %Y"),
                'x' => Strftime(time, "%m/%d/%y"),
                'X' => Strftime(time, "%H:%M:%S"),
                'D' => Strftime(time, "%m/%d/%y"),
                'F' => Strftime(time, "%Y-%m-%d"),
                'T' => Strftime(time, "%H:%M:%S"),
                'R' => Strftime(time, "%H:%M"),
                'n' => "\n",
                't' => "\t",
                '%' => "%",
                _ => "%" + (unpadded ? "-" : string.Empty) + code,
            };
            builder.Append(unpadded && field.Length > 1 && code is not ('a' or 'A' or 'b' or 'B' or 'h' or 'p' or 'c' or 'x' or 'X') ? field.TrimStart('0', ' ') is { Length: > 0 } t ? t : "0" : field);
        }

        return builder.ToString();
    }
}
