namespace Orleans.MoE.Runtime.Membership;

public enum SiloStatus
{
    Joining,
    Active,
    ShuttingDown,
    Dead,
}

/// <summary>A vote that a silo is dead, by the silo that failed to reach it.</summary>
public sealed record SuspicionVote(SiloAddress Voter, DateTimeOffset Time);

/// <summary>One silo's row in the membership table.</summary>
public sealed record MembershipEntry(
    SiloAddress Silo,
    SiloStatus Status,
    DateTimeOffset StartTime,
    DateTimeOffset IAmAliveTime,
    IReadOnlyList<SuspicionVote> Suspicions,
    IReadOnlyDictionary<string, string> Metadata);

/// <summary>The table as read at one version: every row with its ETag.</summary>
public sealed record MembershipSnapshot(long Version, IReadOnlyList<(MembershipEntry Entry, string ETag)> Entries);

/// <summary>
/// Where the cluster's membership is agreed: versioned rows with optimistic concurrency. Every change
/// (join, status, suspicion vote) presents the table version it read and the row's ETag, and fails when
/// either moved on, so concurrent writers never overwrite each other. IAmAlive updates skip the version.
/// </summary>
public interface IMembershipTable
{
    Task<MembershipSnapshot> ReadAllAsync(CancellationToken cancellationToken = default);

    /// <summary>Adds a row; false when the row exists or the table version is not <paramref name="tableVersion"/>.</summary>
    Task<bool> InsertRowAsync(MembershipEntry entry, long tableVersion, CancellationToken cancellationToken = default);

    /// <summary>Replaces a row; false when its ETag or the table version moved on.</summary>
    Task<bool> UpdateRowAsync(MembershipEntry entry, string etag, long tableVersion, CancellationToken cancellationToken = default);

    /// <summary>Heartbeat and published metadata.</summary>
    Task UpdateIAmAliveAsync(SiloAddress silo, DateTimeOffset time, IReadOnlyDictionary<string, string> metadata, CancellationToken cancellationToken = default);
}

/// <summary>The membership table of one process (the embedded default and the test cluster's).</summary>
public sealed class InMemoryMembershipTable : IMembershipTable
{
    private readonly object _lock = new();
    private readonly Dictionary<SiloAddress, (MembershipEntry Entry, long ETag)> _rows = [];
    private long _version;
    private long _nextETag;

    public Task<MembershipSnapshot> ReadAllAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            return Task.FromResult(new MembershipSnapshot(_version, _rows.Values.Select(r => (r.Entry, r.ETag.ToString(System.Globalization.CultureInfo.InvariantCulture))).ToList()));
        }
    }

    public Task<bool> InsertRowAsync(MembershipEntry entry, long tableVersion, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        lock (_lock)
        {
            if (_version != tableVersion || _rows.ContainsKey(entry.Silo))
            {
                return Task.FromResult(false);
            }

            _rows[entry.Silo] = (entry, ++_nextETag);
            _version++;
            return Task.FromResult(true);
        }
    }

    public Task<bool> UpdateRowAsync(MembershipEntry entry, string etag, long tableVersion, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        lock (_lock)
        {
            if (_version != tableVersion || !_rows.TryGetValue(entry.Silo, out var row) || row.ETag.ToString(System.Globalization.CultureInfo.InvariantCulture) != etag)
            {
                return Task.FromResult(false);
            }

            _rows[entry.Silo] = (entry, ++_nextETag);
            _version++;
            return Task.FromResult(true);
        }
    }

    public Task UpdateIAmAliveAsync(SiloAddress silo, DateTimeOffset time, IReadOnlyDictionary<string, string> metadata, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            if (_rows.TryGetValue(silo, out var row))
            {
                _rows[silo] = (row.Entry with { IAmAliveTime = time, Metadata = metadata }, row.ETag);
            }
        }

        return Task.CompletedTask;
    }
}
