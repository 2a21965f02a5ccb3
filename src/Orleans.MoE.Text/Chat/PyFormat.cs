using System.Globalization;
using System.Numerics;
using System.Text;

namespace Orleans.MoE.Text.Chat;

/// <summary>Python's number rounding and printf-style formatting (<c>'%s' % x</c>, the <c>format</c> filter).</summary>
internal static class PyFormat
{
    /// <summary>
    /// <paramref name="value"/> with <paramref name="precision"/> decimals, rounded half to even from the exact binary value,
    /// as Python's <c>'%.Nf'</c> and <c>round()</c> do (so 2.675 rounds to 2.67: it is stored as 2.67499999...).
    /// </summary>
    public static string Fixed(double value, int precision)
    {
        if (!double.IsFinite(value))
        {
            return double.IsNaN(value) ? "nan" : value > 0 ? "inf" : "-inf";
        }

        var bits = BitConverter.DoubleToInt64Bits(Math.Abs(value));
        var biased = (int)((bits >> 52) & 0x7FF);
        var fraction = bits & 0xFFFFFFFFFFFFFL;
        BigInteger mantissa = biased == 0 ? fraction : fraction | (1L << 52);
        var exponent = biased == 0 ? -1074 : biased - 1075;

        BigInteger numerator = mantissa;
        BigInteger denominator = BigInteger.One;
        if (exponent >= 0)
        {
            numerator <<= exponent;
        }
        else
        {
            denominator <<= -exponent;
        }

        if (precision >= 0)
        {
            numerator *= BigInteger.Pow(10, precision);
        }
        else
        {
            denominator *= BigInteger.Pow(10, -precision);
        }

        var quotient = BigInteger.DivRem(numerator, denominator, out var remainder);
        var twice = remainder * 2;
        if (twice > denominator || (twice == denominator && !quotient.IsEven))
        {
            quotient += 1;
        }

        var digits = quotient.ToString(CultureInfo.InvariantCulture);
        string text;
        if (precision <= 0)
        {
            text = quotient.IsZero ? "0" : digits + new string('0', -precision);
        }
        else
        {
            digits = digits.PadLeft(precision + 1, '0');
            text = digits[..^precision] + "." + digits[^precision..];
        }

        return double.IsNegative(value) ? "-" + text : text;
    }

    /// <summary>Python's <c>round(value, precision)</c> for a float.</summary>
    public static double Round(double value, int precision) =>
        double.IsFinite(value) ? double.Parse(Fixed(value, precision), NumberStyles.Float, CultureInfo.InvariantCulture) : value;

    /// <summary>
    /// <c>format % values</c>: conversions s, r, d, i, f, F, e, E, x, X, o, c and %%, with flags (<c>-+ 0</c>),
    /// width, precision and <c>%(name)s</c> keys; a tuple supplies several values, a dict the named ones.
    /// </summary>
    public static string Percent(string format, object? values)
    {
        var positional = values is TupleValue tuple ? tuple.Items : [values];
        var next = 0;
        var usedMapping = false;
        var builder = new StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] != '%')
            {
                builder.Append(format[i]);
                continue;
            }

            if (++i >= format.Length)
            {
                throw new ChatTemplateException("incomplete format");
            }

            object? value = null;
            var haveValue = false;
            if (format[i] == '(')
            {
                var close = format.IndexOf(')', i);
                if (close < 0 || values is not DictValue mapping)
                {
                    throw new ChatTemplateException(close < 0 ? "incomplete format key" : "format requires a mapping");
                }

                var key = format[(i + 1)..close];
                value = mapping.TryGet(key, out var found) ? found : throw new ChatTemplateException($"'{key}'");
                haveValue = true;
                usedMapping = true;
                i = close + 1;
            }

            var flags = string.Empty;
            while (i < format.Length && format[i] is '-' or '+' or ' ' or '0' or '#')
            {
                flags += format[i++];
            }

            var width = ReadNumber(format, ref i);
            int? precision = null;
            if (i < format.Length && format[i] == '.')
            {
                i++;
                precision = ReadNumber(format, ref i) ?? 0;
            }

            while (i < format.Length && format[i] is 'h' or 'l' or 'L')
            {
                i++;
            }

            if (i >= format.Length)
            {
                throw new ChatTemplateException("incomplete format");
            }

            var conversion = format[i];
            if (conversion == '%')
            {
                builder.Append('%');
                continue;
            }

            if (!haveValue)
            {
                value = next < positional.Count ? positional[next++] : throw new ChatTemplateException("not enough arguments for format string");
            }

            builder.Append(Pad(Convert(conversion, value, precision, flags), width, flags, conversion is not ('s' or 'r' or 'a' or 'c')));
        }

        if (!usedMapping && values is not DictValue && next < positional.Count)
        {
            throw new ChatTemplateException("not all arguments converted during string formatting");
        }

        return builder.ToString();
    }

    private static int? ReadNumber(string format, ref int i)
    {
        var start = i;
        while (i < format.Length && char.IsAsciiDigit(format[i]))
        {
            i++;
        }

        return i > start ? int.Parse(format.AsSpan(start, i - start), NumberStyles.None, CultureInfo.InvariantCulture) : null;
    }

    private static string Convert(char conversion, object? value, int? precision, string flags)
    {
        switch (conversion)
        {
            case 's':
                var s = PyOps.Str(value);
                return precision is { } p && p < PyString.Length(s) ? PyString.Slice(s, 0, p, null) : s;
            case 'r' or 'a':
                return PyOps.Repr(value);
            case 'c':
                return value is string c && PyString.Length(c) == 1 ? c
                    : PyOps.IsInteger(value) ? char.ConvertFromUtf32((int)PyOps.AsLong(value))
                    : throw new ChatTemplateException("%c requires int or char");
        }

        if (!PyOps.IsNumber(value))
        {
            throw new ChatTemplateException($"%{conversion} format: a real number is required, not {PyOps.TypeName(value)}");
        }

        var sign = flags.Contains('+', StringComparison.Ordinal) ? "+" : flags.Contains(' ', StringComparison.Ordinal) ? " " : string.Empty;
        string body;
        switch (conversion)
        {
            case 'd' or 'i' or 'u':
                var integer = PyOps.IsInteger(value) ? PyOps.AsLong(value) : (long)Math.Truncate(PyOps.AsDouble(value));
                body = integer.ToString(CultureInfo.InvariantCulture);
                break;
            case 'x' or 'X' or 'o':
                if (!PyOps.IsInteger(value))
                {
                    throw new ChatTemplateException($"%{conversion} format: an integer is required, not {PyOps.TypeName(value)}");
                }

                var n = PyOps.AsLong(value);
                var magnitude = conversion == 'o' ? System.Convert.ToString(Math.Abs(n), 8) : Math.Abs(n).ToString(conversion == 'x' ? "x" : "X", CultureInfo.InvariantCulture);
                body = (n < 0 ? "-" : string.Empty) + magnitude;
                break;
            case 'f' or 'F':
                body = Fixed(PyOps.AsDouble(value), precision ?? 6);
                break;
            case 'e' or 'E':
                var d = PyOps.AsDouble(value);
                var text = d.ToString((conversion == 'e' ? "e" : "E") + (precision ?? 6).ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
                var at = text.IndexOfAny(['e', 'E']);
                var exponent = int.Parse(text.AsSpan(at + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
                body = text[..(at + 1)] + (exponent < 0 ? "-" : "+") + Math.Abs(exponent).ToString("00", CultureInfo.InvariantCulture);
                break;
            default:
                throw new ChatTemplateException($"unsupported format character '{conversion}'");
        }

        return body.StartsWith('-') ? body : sign + body;
    }

    private static string Pad(string text, int? width, string flags, bool numeric)
    {
        var length = PyString.Length(text);
        if (width is not { } w || w <= length)
        {
            return text;
        }

        if (flags.Contains('-', StringComparison.Ordinal))
        {
            return text + new string(' ', w - length);
        }

        if (numeric && flags.Contains('0', StringComparison.Ordinal))
        {
            var signLength = text.Length > 0 && text[0] is '-' or '+' or ' ' ? 1 : 0;
            return text[..signLength] + new string('0', w - length) + text[signLength..];
        }

        return new string(' ', w - length) + text;
    }

    /// <summary>
    /// <c>format(value, spec)</c> for str.format fields: <c>[[fill]align][sign][#][0][width][,|_][.precision][type]</c> with types
    /// s, d, x, X, o, b, c, f, F, e, E and %; the general float format (g, or a precision without a type) is not supported.
    /// </summary>
    public static string Spec(object? value, string spec)
    {
        if (spec.Length == 0)
        {
            return PyOps.Str(value);
        }

        var i = 0;
        var fill = ' ';
        char? align = null;
        if (spec.Length >= 2 && spec[1] is '<' or '>' or '^' or '=')
        {
            fill = spec[0];
            align = spec[1];
            i = 2;
        }
        else if (spec[0] is '<' or '>' or '^' or '=')
        {
            align = spec[0];
            i = 1;
        }

        var sign = i < spec.Length && spec[i] is '+' or '-' or ' ' ? spec[i++] : '-';
        var alternate = i < spec.Length && spec[i] == '#';
        if (alternate)
        {
            i++;
        }

        if (i < spec.Length && spec[i] == '0')
        {
            if (align is null)
            {
                fill = '0';
                align = '=';
            }

            i++;
        }

        var width = ReadNumber(spec, ref i) ?? 0;
        var grouping = i < spec.Length && spec[i] is ',' or '_' ? spec[i++] : '\0';
        int? precision = null;
        if (i < spec.Length && spec[i] == '.')
        {
            i++;
            precision = ReadNumber(spec, ref i) ?? throw new ChatTemplateException("Format specifier missing precision");
        }

        var type = i < spec.Length ? spec[i++] : '\0';
        if (i != spec.Length)
        {
            throw new ChatTemplateException("Invalid format specifier");
        }

        string body;
        var numeric = true;
        switch (value)
        {
            case string text when type is 's' or '\0':
                body = precision is { } p && p < PyString.Length(text) ? PyString.Slice(text, 0, p, null) : text;
                numeric = false;
                break;
            case bool or long when type is 'd' or 'x' or 'X' or 'o' or 'b' or 'c' or '\0':
                var n = PyOps.AsLong(value);
                var magnitude = (ulong)Math.Abs(n);
                body = type switch
                {
                    'x' => magnitude.ToString("x", CultureInfo.InvariantCulture),
                    'X' => magnitude.ToString("X", CultureInfo.InvariantCulture),
                    'o' => System.Convert.ToString((long)magnitude, 8),
                    'b' => System.Convert.ToString((long)magnitude, 2),
                    'c' => char.ConvertFromUtf32((int)n),
                    _ => Group(magnitude.ToString(CultureInfo.InvariantCulture), grouping),
                };
                var prefix = alternate && type is 'x' or 'X' or 'o' or 'b' ? "0" + type : string.Empty;
                body = (n < 0 ? "-" : sign == '-' ? string.Empty : sign.ToString()) + prefix + body;
                break;
            case bool or long or double when type is 'f' or 'F' or 'e' or 'E' or '%':
                var x = PyOps.AsDouble(value) * (type == '%' ? 100 : 1);
                body = type is 'e' or 'E' ? Convert(type, x, precision, string.Empty) : Fixed(x, precision ?? 6);
                if (grouping != '\0' && type is 'f' or 'F' or '%')
                {
                    var negative = body.StartsWith('-');
                    var unsigned = negative ? body[1..] : body;
                    var dot = unsigned.IndexOf('.', StringComparison.Ordinal);
                    body = (negative ? "-" : string.Empty) + Group(dot < 0 ? unsigned : unsigned[..dot], grouping) + (dot < 0 ? string.Empty : unsigned[dot..]);
                }

                body = (type == '%' ? body + "%" : body) is var signed && (signed.StartsWith('-') || sign == '-') ? signed : sign + signed;
                break;
            case double d when type == '\0' && precision is null:
                body = PyOps.FloatRepr(d);
                body = body.StartsWith('-') || sign == '-' ? body : sign + body;
                break;
            default:
                throw new ChatTemplateException($"format spec '{spec}' is not supported for {PyOps.TypeName(value)}");
        }

        var padding = width - PyString.Length(body);
        if (padding <= 0)
        {
            return body;
        }

        var pad = new string(fill, padding);
        return (align ?? (numeric ? '>' : '<')) switch
        {
            '<' => body + pad,
            '^' => new string(fill, padding / 2) + body + new string(fill, padding - (padding / 2)),
            '=' when body.Length > 0 && body[0] is '-' or '+' or ' ' => body[0] + pad + body[1..],
            _ => pad + body,
        };
    }

    private static string Group(string digits, char separator)
    {
        if (separator == '\0' || digits.Length <= 3)
        {
            return digits;
        }

        var builder = new StringBuilder();
        for (var i = 0; i < digits.Length; i++)
        {
            if (i > 0 && (digits.Length - i) % 3 == 0)
            {
                builder.Append(separator);
            }

            builder.Append(digits[i]);
        }

        return builder.ToString();
    }
}
