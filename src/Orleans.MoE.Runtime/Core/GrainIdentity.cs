using System.Globalization;

namespace Orleans.MoE.Runtime;

/// <summary>Marks a grain interface. Grain interfaces extend one of the keyed markers below.</summary>
public interface IGrain;

public interface IGrainWithStringKey : IGrain;

public interface IGrainWithIntegerKey : IGrain;

public interface IGrainWithGuidKey : IGrain;

/// <summary>An integer key with a string extension ("42+gpu").</summary>
public interface IGrainWithIntegerCompoundKey : IGrain;

/// <summary>
/// Marks a per-silo service reached like a grain but not placed or activated: the directory partition,
/// membership probes. Proxies to it name the silo explicitly.
/// </summary>
public interface ISystemTarget : IGrain;

/// <summary>A grain's identity: its class's type name and its key, as text.</summary>
[Serialization.GenerateSerializer]
public readonly record struct GrainId(string Type, string Key)
{
    public override string ToString() => $"{Type}/{Key}";

    public static GrainId Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? throw new FormatException($"'{text}' is not a grain id (type/key)") : new GrainId(text[..slash], text[(slash + 1)..]);
    }

    internal static string KeyOf(long key) => key.ToString(CultureInfo.InvariantCulture);

    internal static string KeyOf(Guid key) => key.ToString("N");

    internal static string KeyOf(long key, string extension) => $"{key.ToString(CultureInfo.InvariantCulture)}+{extension}";

    /// <summary>A stable 32-bit hash (the same on every silo and run) for the directory ring.</summary>
    public uint StableHash() => Hashing.Stable(ToString());
}

/// <summary>Why an activation is going away.</summary>
public enum DeactivationReason
{
    /// <summary>The grain asked for it (DeactivateOnIdle).</summary>
    Requested,

    /// <summary>Idle longer than its collection age.</summary>
    Idle,

    /// <summary>The activation is moving to another silo.</summary>
    Migrating,

    /// <summary>The silo is shutting down.</summary>
    ShuttingDown,

    /// <summary>A duplicate activation lost the directory race.</summary>
    Duplicate,

    /// <summary>The silo was declared dead by the cluster.</summary>
    SiloDeclaredDead,

    /// <summary>OnActivateAsync failed.</summary>
    ActivationFailed,
}

internal static class Hashing
{
    /// <summary>FNV-1a over UTF-16 code units: stable across processes, unlike string.GetHashCode.</summary>
    public static uint Stable(string text)
    {
        var hash = 2166136261u;
        foreach (var c in text)
        {
            hash = (hash ^ c) * 16777619u;
        }

        // Finalise (murmur3 fmix) so nearby strings spread over the ring.
        hash ^= hash >> 16;
        hash *= 0x85ebca6b;
        hash ^= hash >> 13;
        hash *= 0xc2b2ae35;
        hash ^= hash >> 16;
        return hash;
    }
}
