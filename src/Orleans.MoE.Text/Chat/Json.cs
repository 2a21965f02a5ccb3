using System.Globalization;
using System.Text;

namespace Orleans.MoE.Text.Chat;

/// <summary>
/// The <c>tojson</c> filter of transformers' chat templates: Python's
/// <c>json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)</c>.
/// </summary>
internal static class Json
{
    public static string Dumps(object? value, string? indent, string itemSeparator, string keySeparator, bool sortKeys, bool ensureAscii)
    {
        var builder = new StringBuilder();
        Write(builder, value, indent, 0, itemSeparator, keySeparator, sortKeys, ensureAscii);
        return builder.ToString();
    }

    private static void Write(StringBuilder b, object? value, string? indent, int depth, string itemSeparator, string keySeparator, bool sortKeys, bool ensureAscii)
    {
        switch (value)
        {
            case null:
                b.Append("null");
                break;
            case bool flag:
                b.Append(flag ? "true" : "false");
                break;
            case long l:
                b.Append(l.ToString(CultureInfo.InvariantCulture));
                break;
            case double d:
                b.Append(double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : PyOps.FloatRepr(d));
                break;
            case string s:
                WriteString(b, s, ensureAscii);
                break;
            case List<object?> or TupleValue:
                var items = value is TupleValue t ? t.Items : (List<object?>)value;
                WriteContainer(b, '[', ']', items.Count, indent, depth, itemSeparator, i => Write(b, items[i], indent, depth + 1, itemSeparator, keySeparator, sortKeys, ensureAscii));
                break;
            case DictValue dict:
                var entries = dict.Entries.Select(e => (Key: KeyText(DictValue.FromKey(e.Key)), e.Value)).ToList();
                if (sortKeys)
                {
                    entries.Sort((x, y) => string.CompareOrdinal(x.Key, y.Key));
                }

                WriteContainer(b, '{', '}', entries.Count, indent, depth, itemSeparator, i =>
                {
                    WriteString(b, entries[i].Key, ensureAscii);
                    b.Append(keySeparator);
                    Write(b, entries[i].Value, indent, depth + 1, itemSeparator, keySeparator, sortKeys, ensureAscii);
                });
                break;
            default:
                throw new ChatTemplateException($"Object of type {PyOps.TypeName(value)} is not JSON serializable");
        }
    }

    private static string KeyText(object? key) =>
        key switch
        {
            string s => s,
            null => "null",
            bool flag => flag ? "true" : "false",
            long or double => PyOps.Repr(key),
            _ => throw new ChatTemplateException($"keys must be str, int, float, bool or None, not {PyOps.TypeName(key)}"),
        };

    private static void WriteContainer(StringBuilder b, char open, char close, int count, string? indent, int depth, string itemSeparator, Action<int> writeItem)
    {
        b.Append(open);
        if (count == 0)
        {
            b.Append(close);
            return;
        }

        for (var i = 0; i < count; i++)
        {
            if (i > 0)
            {
                b.Append(itemSeparator);
            }

            if (indent is not null)
            {
                b.Append('\n').Insert(b.Length, indent, depth + 1);
            }

            writeItem(i);
        }

        if (indent is not null)
        {
            b.Append('\n').Insert(b.Length, indent, depth);
        }

        b.Append(close);
    }

    private static void WriteString(StringBuilder b, string s, bool ensureAscii)
    {
        b.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"':
                    b.Append("\\\"");
                    break;
                case '\\':
                    b.Append("\\\\");
                    break;
                case '\n':
                    b.Append("\\n");
                    break;
                case '\r':
                    b.Append("\\r");
                    break;
                case '\t':
                    b.Append("\\t");
                    break;
                case '\b':
                    b.Append("\\b");
                    break;
                case '\f':
                    b.Append("\\f");
                    break;
                default:
                    if (c < 0x20 || (ensureAscii && c > 0x7e))
                    {
                        b.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        b.Append(c);
                    }

                    break;
            }
        }

        b.Append('"');
    }
}
