using System.Collections.Concurrent;

namespace Orleans.MoE.Runtime.Serialization;

/// <summary>Writes and reads one type in the wire format.</summary>
public interface ICodec<T>
{
    void Write(Writer writer, T value);

    T Read(ref Reader reader);
}

/// <summary>The codec for <typeparamref name="T"/>, resolved once per type.</summary>
public static class Codec<T>
{
    private static ICodec<T>? s_instance;

    public static ICodec<T> Instance => s_instance ??= CodecRegistry.Resolve<T>();
}

/// <summary>
/// Where codecs come from: built-ins for primitives, strings, collections and <see cref="TensorPayload"/>,
/// and the codecs the source generator emits for types marked <see cref="GenerateSerializerAttribute"/>
/// (registered by module initializers). Collections of registered types are composed on first use.
/// </summary>
public static class CodecRegistry
{
    private static readonly ConcurrentDictionary<Type, object> s_codecs = new();

    static CodecRegistry()
    {
        Add(new Primitive<bool>((w, v) => w.WriteBool(v), (ref Reader r) => r.ReadBool()));
        Add(new Primitive<byte>((w, v) => w.WriteByte(v), (ref Reader r) => r.ReadByte()));
        Add(new Primitive<int>((w, v) => w.WriteInt32(v), (ref Reader r) => r.ReadInt32()));
        Add(new Primitive<uint>((w, v) => w.WriteInt32((int)v), (ref Reader r) => (uint)r.ReadInt32()));
        Add(new Primitive<long>((w, v) => w.WriteInt64(v), (ref Reader r) => r.ReadInt64()));
        Add(new Primitive<ulong>((w, v) => w.WriteUInt64(v), (ref Reader r) => r.ReadUInt64()));
        Add(new Primitive<float>((w, v) => w.WriteSingle(v), (ref Reader r) => r.ReadSingle()));
        Add(new Primitive<double>((w, v) => w.WriteDouble(v), (ref Reader r) => r.ReadDouble()));
        Add(new Primitive<string>((w, v) => w.WriteString(v), (ref Reader r) => r.ReadString()!));
        Add(new Primitive<Guid>((w, v) => w.WriteBytes(v.ToByteArray()), (ref Reader r) => new Guid(r.ReadBytesSlice().Span)));
        Add(new Primitive<TimeSpan>((w, v) => w.WriteInt64(v.Ticks), (ref Reader r) => new TimeSpan(r.ReadInt64())));
        Add(new Primitive<DateTime>((w, v) => w.WriteInt64(v.ToBinary()), (ref Reader r) => DateTime.FromBinary(r.ReadInt64())));
        Add(new Primitive<DateTimeOffset>(
            (w, v) => { w.WriteInt64(v.UtcTicks); w.WriteInt64(v.Offset.Ticks); },
            (ref Reader r) => new DateTimeOffset(r.ReadInt64(), TimeSpan.Zero).ToOffset(new TimeSpan(r.ReadInt64()))));
        Add(new Primitive<byte[]>((w, v) => w.WriteBytes(v), (ref Reader r) => r.ReadBytesSlice().ToArray()));
        Add(new TensorPayloadCodec());
    }

    /// <summary>Registers a codec (generated code calls this from a module initializer).</summary>
    public static void Add<T>(ICodec<T> codec) => s_codecs[typeof(T)] = codec;

    internal static ICodec<T> Resolve<T>()
    {
        if (s_codecs.TryGetValue(typeof(T), out var codec))
        {
            return (ICodec<T>)codec;
        }

        var type = typeof(T);
        Type? composed = null;
        if (type.IsEnum)
        {
            composed = typeof(EnumCodec<>).MakeGenericType(type);
        }
        else if (Nullable.GetUnderlyingType(type) is { } underlying)
        {
            composed = typeof(NullableCodec<>).MakeGenericType(underlying);
        }
        else if (type.IsArray && type.GetArrayRank() == 1)
        {
            composed = typeof(ArrayCodec<>).MakeGenericType(type.GetElementType()!);
        }
        else if (type.IsGenericType)
        {
            var definition = type.GetGenericTypeDefinition();
            var arguments = type.GetGenericArguments();
            if (definition == typeof(List<>) || definition == typeof(IReadOnlyList<>) || definition == typeof(IList<>) || definition == typeof(IEnumerable<>) || definition == typeof(IReadOnlyCollection<>))
            {
                composed = typeof(ListCodec<,>).MakeGenericType(type, arguments[0]);
            }
            else if (definition == typeof(Dictionary<,>) || definition == typeof(IReadOnlyDictionary<,>) || definition == typeof(IDictionary<,>))
            {
                composed = typeof(DictionaryCodec<,,>).MakeGenericType(type, arguments[0], arguments[1]);
            }
        }

        if (composed is null)
        {
            throw new SerializationException($"no codec for {type.FullName}: mark it [GenerateSerializer] or use a supported type");
        }

        var created = (ICodec<T>)Activator.CreateInstance(composed)!;
        s_codecs[type] = created;
        return created;
    }

    private delegate T ReadFunc<T>(ref Reader reader);

    private sealed class Primitive<T>(Action<Writer, T> write, ReadFunc<T> read) : ICodec<T>
    {
        public void Write(Writer writer, T value) => write(writer, value);

        public T Read(ref Reader reader) => read(ref reader);
    }

    private sealed class EnumCodec<T> : ICodec<T>
        where T : struct, Enum
    {
        public void Write(Writer writer, T value) => writer.WriteInt64(Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture));

        public T Read(ref Reader reader) => (T)Enum.ToObject(typeof(T), reader.ReadInt64());
    }

    private sealed class NullableCodec<T> : ICodec<T?>
        where T : struct
    {
        public void Write(Writer writer, T? value)
        {
            writer.WriteBool(value.HasValue);
            if (value.HasValue)
            {
                Codec<T>.Instance.Write(writer, value.Value);
            }
        }

        public T? Read(ref Reader reader) => reader.ReadBool() ? Codec<T>.Instance.Read(ref reader) : null;
    }

    private sealed class ArrayCodec<T> : ICodec<T[]>
    {
        public void Write(Writer writer, T[] value)
        {
            writer.WriteVarUInt((uint)value.Length);
            foreach (var item in value)
            {
                Codec<T>.Instance.Write(writer, item);
            }
        }

        public T[] Read(ref Reader reader)
        {
            var result = new T[CheckedCount(ref reader)];
            for (var i = 0; i < result.Length; i++)
            {
                result[i] = Codec<T>.Instance.Read(ref reader);
            }

            return result;
        }
    }

    private sealed class ListCodec<TList, T> : ICodec<TList>
        where TList : IEnumerable<T>
    {
        public void Write(Writer writer, TList value)
        {
            var items = value as IReadOnlyCollection<T> ?? value.ToList();
            writer.WriteVarUInt((uint)items.Count);
            foreach (var item in items)
            {
                Codec<T>.Instance.Write(writer, item);
            }
        }

        public TList Read(ref Reader reader)
        {
            var count = CheckedCount(ref reader);
            var result = new List<T>(count);
            for (var i = 0; i < count; i++)
            {
                result.Add(Codec<T>.Instance.Read(ref reader));
            }

            return (TList)(object)result;
        }
    }

    private sealed class DictionaryCodec<TDictionary, TKey, TValue> : ICodec<TDictionary>
        where TDictionary : IEnumerable<KeyValuePair<TKey, TValue>>
        where TKey : notnull
    {
        public void Write(Writer writer, TDictionary value)
        {
            var items = value.ToList();
            writer.WriteVarUInt((uint)items.Count);
            foreach (var (key, item) in items)
            {
                Codec<TKey>.Instance.Write(writer, key);
                Codec<TValue>.Instance.Write(writer, item);
            }
        }

        public TDictionary Read(ref Reader reader)
        {
            var count = CheckedCount(ref reader);
            var result = new Dictionary<TKey, TValue>(count);
            for (var i = 0; i < count; i++)
            {
                var key = Codec<TKey>.Instance.Read(ref reader);
                result[key] = Codec<TValue>.Instance.Read(ref reader);
            }

            return (TDictionary)(object)result;
        }
    }

    private static int CheckedCount(ref Reader reader)
    {
        var count = reader.ReadVarUInt();
        return count > (uint)reader.Remaining ? throw new SerializationException($"collection of {count} items exceeds the message") : (int)count;
    }
}

/// <summary>Marks a class, record or struct whose public properties the source generator serializes.</summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Struct, Inherited = false)]
public sealed class GenerateSerializerAttribute : Attribute;
