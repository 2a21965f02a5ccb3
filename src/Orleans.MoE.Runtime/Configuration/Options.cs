using Microsoft.Extensions.Options;

namespace Orleans.MoE.Runtime.Configuration;

/// <summary>The cluster a silo or client belongs to.</summary>
public sealed class ClusterOptions
{
    public const string DEFAULT_CLUSTER_ID = "default";

    /// <summary>Silos and clients of different clusters never talk.</summary>
    public string ClusterId { get; set; } = DEFAULT_CLUSTER_ID;

    /// <summary>The shared secret every silo and client must prove (at least 16 characters).</summary>
    public string ClusterSecret { get; set; } = "";
}

/// <summary>This silo's endpoint and what it tells placement about itself.</summary>
public sealed class SiloOptions
{
    public const string DEFAULT_HOST = "127.0.0.1";

    /// <summary>Address to listen on and advertise (an IP address).</summary>
    public string Host { get; set; } = DEFAULT_HOST;

    /// <summary>TCP port; 0 picks a free one.</summary>
    public int Port { get; set; }

    /// <summary>Published capabilities and capacity, e.g. gpu=true, memory-free=8589934592.</summary>
    public Dictionary<string, string> Metadata { get; set; } = [];
}

/// <summary>Message limits and timeouts.</summary>
public sealed class MessagingOptions
{
    public const int DEFAULT_MAX_MESSAGE_SIZE = 128 * 1024 * 1024;
    public static readonly TimeSpan DEFAULT_RESPONSE_TIMEOUT = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan DEFAULT_CONNECT_TIMEOUT = TimeSpan.FromSeconds(5);

    /// <summary>Largest frame sent or accepted; a larger call fails alone with <see cref="Messaging.MessageTooLargeException"/>.</summary>
    public int MaxMessageSize { get; set; } = DEFAULT_MAX_MESSAGE_SIZE;

    /// <summary>How long a caller waits for a response unless the method says otherwise.</summary>
    public TimeSpan ResponseTimeout { get; set; } = DEFAULT_RESPONSE_TIMEOUT;

    public TimeSpan ConnectTimeout { get; set; } = DEFAULT_CONNECT_TIMEOUT;
}

/// <summary>
/// Failure detection, tuned for a LAN: a killed silo is declared dead within about 3 seconds
/// (probe every 0.5 s, 2 missed probes, an indirect probe, votes from its monitors).
/// </summary>
public sealed class ClusterMembershipOptions
{
    public static readonly TimeSpan DEFAULT_PROBE_INTERVAL = TimeSpan.FromMilliseconds(500);
    public static readonly TimeSpan DEFAULT_PROBE_TIMEOUT = TimeSpan.FromMilliseconds(500);
    public const int DEFAULT_MISSED_PROBES_LIMIT = 2;
    public const int DEFAULT_PROBED_SILOS = 3;
    public const int DEFAULT_VOTES_FOR_DEATH = 2;
    public static readonly TimeSpan DEFAULT_VOTE_EXPIRATION = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan DEFAULT_TABLE_REFRESH_INTERVAL = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan DEFAULT_I_AM_ALIVE_INTERVAL = TimeSpan.FromSeconds(5);

    public TimeSpan ProbeInterval { get; set; } = DEFAULT_PROBE_INTERVAL;
    public TimeSpan ProbeTimeout { get; set; } = DEFAULT_PROBE_TIMEOUT;

    /// <summary>Consecutive missed probes before an indirect probe and a suspicion vote.</summary>
    public int MissedProbesLimit { get; set; } = DEFAULT_MISSED_PROBES_LIMIT;

    /// <summary>How many successors on the ring each silo probes.</summary>
    public int ProbedSilos { get; set; } = DEFAULT_PROBED_SILOS;

    /// <summary>Votes that declare a silo dead (fewer when fewer silos could vote).</summary>
    public int VotesForDeath { get; set; } = DEFAULT_VOTES_FOR_DEATH;

    public TimeSpan VoteExpiration { get; set; } = DEFAULT_VOTE_EXPIRATION;
    public TimeSpan TableRefreshInterval { get; set; } = DEFAULT_TABLE_REFRESH_INTERVAL;
    public TimeSpan IAmAliveInterval { get; set; } = DEFAULT_I_AM_ALIVE_INTERVAL;
}

/// <summary>Idle collection of activations.</summary>
public sealed class GrainCollectionOptions
{
    public static readonly TimeSpan DEFAULT_COLLECTION_AGE = TimeSpan.FromMinutes(15);
    public static readonly TimeSpan DEFAULT_COLLECTION_QUANTUM = TimeSpan.FromMinutes(1);
    public static readonly TimeSpan DEFAULT_DEACTIVATION_TIMEOUT = TimeSpan.FromSeconds(10);

    /// <summary>Idle time after which an activation is deactivated (per class: [CollectionAgeLimit]).</summary>
    public TimeSpan CollectionAge { get; set; } = DEFAULT_COLLECTION_AGE;

    /// <summary>How often idle activations are looked for.</summary>
    public TimeSpan CollectionQuantum { get; set; } = DEFAULT_COLLECTION_QUANTUM;

    /// <summary>How long OnDeactivateAsync may take.</summary>
    public TimeSpan DeactivationTimeout { get; set; } = DEFAULT_DEACTIVATION_TIMEOUT;
}

internal sealed class ClusterOptionsValidator : IValidateOptions<ClusterOptions>
{
    public ValidateOptionsResult Validate(string? name, ClusterOptions options) =>
        string.IsNullOrWhiteSpace(options.ClusterId) ? ValidateOptionsResult.Fail("ClusterOptions.ClusterId must be set")
        : options.ClusterSecret.Length < 16 ? ValidateOptionsResult.Fail("ClusterOptions.ClusterSecret must be at least 16 characters")
        : ValidateOptionsResult.Success;
}

internal sealed class MessagingOptionsValidator : IValidateOptions<MessagingOptions>
{
    public ValidateOptionsResult Validate(string? name, MessagingOptions options) =>
        options.MaxMessageSize < 4096 ? ValidateOptionsResult.Fail("MessagingOptions.MaxMessageSize must be at least 4096 bytes")
        : options.ResponseTimeout <= TimeSpan.Zero ? ValidateOptionsResult.Fail("MessagingOptions.ResponseTimeout must be positive")
        : ValidateOptionsResult.Success;
}

internal sealed class MembershipOptionsValidator : IValidateOptions<ClusterMembershipOptions>
{
    public ValidateOptionsResult Validate(string? name, ClusterMembershipOptions options) =>
        options.ProbeInterval <= TimeSpan.Zero || options.ProbeTimeout <= TimeSpan.Zero ? ValidateOptionsResult.Fail("probe interval and timeout must be positive")
        : options.TableRefreshInterval <= TimeSpan.Zero || options.IAmAliveInterval <= TimeSpan.Zero || options.VoteExpiration <= TimeSpan.Zero
            ? ValidateOptionsResult.Fail("TableRefreshInterval, IAmAliveInterval and VoteExpiration must be positive")
        : options.MissedProbesLimit < 1 || options.VotesForDeath < 1 || options.ProbedSilos < 1 ? ValidateOptionsResult.Fail("MissedProbesLimit, VotesForDeath and ProbedSilos must be at least 1")
        : ValidateOptionsResult.Success;
}

internal sealed class GrainCollectionOptionsValidator : IValidateOptions<GrainCollectionOptions>
{
    public ValidateOptionsResult Validate(string? name, GrainCollectionOptions options) =>
        options.CollectionAge <= TimeSpan.Zero ? ValidateOptionsResult.Fail("GrainCollectionOptions.CollectionAge must be positive")
        : options.CollectionQuantum <= TimeSpan.Zero ? ValidateOptionsResult.Fail("GrainCollectionOptions.CollectionQuantum must be positive")
        : options.DeactivationTimeout <= TimeSpan.Zero ? ValidateOptionsResult.Fail("GrainCollectionOptions.DeactivationTimeout must be positive")
        : ValidateOptionsResult.Success;
}

internal sealed class SiloOptionsValidator : IValidateOptions<SiloOptions>
{
    public ValidateOptionsResult Validate(string? name, SiloOptions options) =>
        !System.Net.IPAddress.TryParse(options.Host, out _) ? ValidateOptionsResult.Fail($"SiloOptions.Host '{options.Host}' must be an IP address")
        : options.Port is < 0 or > 65535 ? ValidateOptionsResult.Fail("SiloOptions.Port must be in 0..65535")
        : ValidateOptionsResult.Success;
}
