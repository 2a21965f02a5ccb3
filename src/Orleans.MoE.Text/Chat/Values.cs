namespace Orleans.MoE.Text.Chat;

// Runtime values follow Python's data model, as Jinja2 sees them:
//   None -> null, bool -> bool, int -> long, float -> double, str -> string, list -> List<object?>,
//   tuple -> TupleValue, dict -> DictValue, plus Undefined, NamespaceValue, LoopValue and CallableValue.

/// <summary>
/// Jinja2's default Undefined: falsy, prints as '', iterates as empty, has length 0; anything else
/// (attributes, items, calls, arithmetic, JSON) fails with the message Jinja2 would give.
/// </summary>
internal sealed class Undefined
{
    private readonly string? _hint;
    private readonly object? _owner;
    private readonly bool _hasOwner;
    private readonly object? _name;

    private Undefined(object? name, object? owner, bool hasOwner, string? hint)
    {
        _name = name;
        _owner = owner;
        _hasOwner = hasOwner;
        _hint = hint;
    }

    public static Undefined Name(string name) => new(name, null, false, null);

    public static Undefined Member(object? owner, object? name) => new(name, owner, true, null);

    public static Undefined WithHint(string hint) => new(null, null, false, hint);

    public string Message =>
        _hint ?? (!_hasOwner
            ? $"{PyOps.Repr(_name)} is undefined"
            : _name is string
                ? $"{PyOps.Repr(PyOps.ObjectTypeRepr(_owner))} has no attribute {PyOps.Repr(_name)}"
                : $"{PyOps.ObjectTypeRepr(_owner)} has no element {PyOps.Repr(_name)}");

    public ChatTemplateException Fail() => new(Message);
}

/// <summary>A Python tuple (immutable; prints as <c>(a, b)</c>).</summary>
internal sealed class TupleValue(IReadOnlyList<object?> items)
{
    public IReadOnlyList<object?> Items { get; } = items;
}

/// <summary>A Python dict: insertion-ordered, keys compared with Python equality.</summary>
internal sealed class DictValue
{
    public DictValue()
    {
        Entries = new OrderedDictionary<object, object?>(PyKeyComparer.Instance);
    }

    public OrderedDictionary<object, object?> Entries { get; }

    public static object Key(object? key) =>
        key switch
        {
            null => NoneKey.Instance,
            List<object?> or DictValue => throw new ChatTemplateException($"unhashable type: '{PyOps.TypeName(key)}'"),
            _ => key,
        };

    public static object? FromKey(object key) => key is NoneKey ? null : key;

    public void Set(object? key, object? value) => Entries[Key(key)] = value;

    public bool TryGet(object? key, out object? value)
    {
        if (key is List<object?> or DictValue)
        {
            value = null;
            return false;
        }

        return Entries.TryGetValue(Key(key), out value);
    }

    /// <summary>The key None, which the ordered dictionary cannot hold as null.</summary>
    private sealed class NoneKey
    {
        public static readonly NoneKey Instance = new();
    }
}

/// <summary>Hashing and equality of dict keys as Python does it (1 == 1.0 == True).</summary>
internal sealed class PyKeyComparer : IEqualityComparer<object>
{
    public static readonly PyKeyComparer Instance = new();

    public new bool Equals(object? x, object? y) => PyOps.Equal(DictValue.FromKey(x!), DictValue.FromKey(y!));

    public int GetHashCode(object obj) =>
        obj switch
        {
            bool b => b ? 1 : 0,
            long l => l.GetHashCode(),
            double d when d == Math.Floor(d) && Math.Abs(d) < 9.2e18 => ((long)d).GetHashCode(),
            string s => StringComparer.Ordinal.GetHashCode(s),
            TupleValue t => t.Items.Aggregate(17, (h, item) => (h * 31) + (item is null ? 0 : GetHashCode(DictValue.Key(item)))),
            _ => obj.GetHashCode(),
        };
}

/// <summary>Jinja2's <c>namespace()</c>: an object whose attributes <c>{% set ns.x = ... %}</c> may change.</summary>
internal sealed class NamespaceValue
{
    public Dictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}

/// <summary>The <c>loop</c> variable of a for loop.</summary>
internal sealed class LoopValue(IReadOnlyList<object?> items)
{
    public int Index0 { get; set; }

    public bool TryGetAttribute(string name, out object? value)
    {
        var length = items.Count;
        value = name switch
        {
            "index" => (long)Index0 + 1,
            "index0" => (long)Index0,
            "revindex" => (long)(length - Index0),
            "revindex0" => (long)(length - Index0 - 1),
            "first" => Index0 == 0,
            "last" => Index0 == length - 1,
            "length" => (long)length,
            "depth" => 1L,
            "depth0" => 0L,
            "previtem" => Index0 > 0 ? items[Index0 - 1] : Undefined.WithHint("there is no previous item"),
            "nextitem" => Index0 < length - 1 ? items[Index0 + 1] : Undefined.WithHint("there is no next item"),
            "cycle" => new BuiltinFunction("cycle", args =>
            {
                if (args.Positional.Count == 0)
                {
                    throw new ChatTemplateException("no items for cycling given");
                }

                return args.Positional[Index0 % args.Positional.Count];
            }),
            _ => Undefined.Member(this, name),
        };
        return value is not Undefined;
    }
}

/// <summary>Arguments of a call: positional, then keyword.</summary>
internal sealed class CallArguments(List<object?> positional, List<KeyValuePair<string, object?>> named)
{
    public static readonly CallArguments Empty = new([], []);

    public List<object?> Positional { get; } = positional;

    public List<KeyValuePair<string, object?>> Named { get; } = named;

    /// <summary>The argument at <paramref name="index"/> (after any the caller consumed) or named <paramref name="name"/>.</summary>
    public object? Get(int index, string name, object? fallback)
    {
        foreach (var (key, value) in Named)
        {
            if (key == name)
            {
                return value;
            }
        }

        return index < Positional.Count ? Positional[index] : fallback;
    }

    public bool Has(int index, string name) => index < Positional.Count || Named.Exists(p => p.Key == name);

    /// <summary>Fails, as Python does, when arguments remain beyond those a function takes.</summary>
    public void Expect(string function, params string[] names)
    {
        if (Positional.Count > names.Length)
        {
            throw new ChatTemplateException($"{function}() takes at most {names.Length} argument(s) ({Positional.Count} given)");
        }

        foreach (var (key, _) in Named)
        {
            if (Array.IndexOf(names, key) < 0)
            {
                throw new ChatTemplateException($"{function}() got an unexpected keyword argument '{key}'");
            }
        }
    }
}

/// <summary>Something a template can call.</summary>
internal abstract class CallableValue(string name)
{
    public string Name { get; } = name;

    public abstract object? Call(CallArguments arguments);
}

/// <summary>A function implemented here: a global, a bound method of a value, a loop helper.</summary>
internal sealed class BuiltinFunction(string name, Func<CallArguments, object?> body) : CallableValue(name)
{
    public override object? Call(CallArguments arguments) => body(arguments);
}
