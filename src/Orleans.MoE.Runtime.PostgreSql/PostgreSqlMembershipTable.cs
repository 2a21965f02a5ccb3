using System.Text.Json;
using Npgsql;
using Orleans.MoE.Runtime.Membership;

namespace Orleans.MoE.Runtime.PostgreSql;

/// <summary>
/// The membership table in PostgreSQL: a version row per cluster and a row per silo with an ETag.
/// Every change runs in one transaction that advances the version only from the value the writer
/// read (and, for updates, only if the row's ETag is unchanged), so concurrent writers cannot lose
/// each other's changes.
/// </summary>
public sealed class PostgreSqlMembershipTable(NpgsqlDataSource dataSource, string clusterId) : IMembershipTable
{
    private int _schemaReady;

    public async Task<MembershipSnapshot> ReadAllAsync(CancellationToken cancellationToken = default)
    {
        await EnsureAsync(cancellationToken).ConfigureAwait(false);
        using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
        long version;
        using (var command = new NpgsqlCommand("SELECT version FROM moe_membership_version WHERE cluster_id = @c", connection, transaction))
        {
            command.Parameters.AddWithValue("c", clusterId);
            version = (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) ?? 0L);
        }

        var entries = new List<(MembershipEntry, string)>();
        using (var command = new NpgsqlCommand("SELECT silo, status, start_time, i_am_alive, suspicions, metadata, etag FROM moe_membership WHERE cluster_id = @c", connection, transaction))
        {
            command.Parameters.AddWithValue("c", clusterId);
            using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var suspicions = JsonSerializer.Deserialize<List<StoredVote>>(reader.GetString(4)) ?? [];
                entries.Add((new MembershipEntry(
                    SiloAddress.Parse(reader.GetString(0)),
                    (SiloStatus)reader.GetInt32(1),
                    reader.GetFieldValue<DateTimeOffset>(2),
                    reader.GetFieldValue<DateTimeOffset>(3),
                    suspicions.Select(v => new SuspicionVote(SiloAddress.Parse(v.Voter), v.Time)).ToList(),
                    JsonSerializer.Deserialize<Dictionary<string, string>>(reader.GetString(5)) ?? []),
                    reader.GetInt64(6).ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return new MembershipSnapshot(version, entries);
    }

    public Task<bool> InsertRowAsync(MembershipEntry entry, long tableVersion, CancellationToken cancellationToken = default) =>
        ChangeAsync(tableVersion, async (connection, transaction) =>
        {
            using var command = new NpgsqlCommand("""
                INSERT INTO moe_membership (cluster_id, silo, status, start_time, i_am_alive, suspicions, metadata, etag)
                VALUES (@c, @s, @st, @start, @alive, @sus::jsonb, @meta::jsonb, 1) ON CONFLICT DO NOTHING
                """, connection, transaction);
            Bind(command, entry);
            return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
        }, cancellationToken);

    public Task<bool> UpdateRowAsync(MembershipEntry entry, string etag, long tableVersion, CancellationToken cancellationToken = default) =>
        ChangeAsync(tableVersion, async (connection, transaction) =>
        {
            using var command = new NpgsqlCommand("""
                UPDATE moe_membership SET status = @st, start_time = @start, i_am_alive = @alive, suspicions = @sus::jsonb, metadata = @meta::jsonb, etag = etag + 1
                WHERE cluster_id = @c AND silo = @s AND etag = @etag
                """, connection, transaction);
            Bind(command, entry);
            command.Parameters.AddWithValue("etag", long.Parse(etag, System.Globalization.CultureInfo.InvariantCulture));
            return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
        }, cancellationToken);

    public async Task UpdateIAmAliveAsync(SiloAddress silo, DateTimeOffset time, IReadOnlyDictionary<string, string> metadata, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(silo);
        using var command = dataSource.CreateCommand("UPDATE moe_membership SET i_am_alive = @alive, metadata = @meta::jsonb WHERE cluster_id = @c AND silo = @s");
        command.Parameters.AddWithValue("alive", time);
        command.Parameters.AddWithValue("meta", JsonSerializer.Serialize(metadata));
        command.Parameters.AddWithValue("c", clusterId);
        command.Parameters.AddWithValue("s", silo.ToString());
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<bool> ChangeAsync(long tableVersion, Func<NpgsqlConnection, NpgsqlTransaction, Task<bool>> change, CancellationToken cancellationToken)
    {
        await EnsureAsync(cancellationToken).ConfigureAwait(false);
        using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        using (var bump = new NpgsqlCommand("UPDATE moe_membership_version SET version = version + 1 WHERE cluster_id = @c AND version = @v", connection, transaction))
        {
            bump.Parameters.AddWithValue("c", clusterId);
            bump.Parameters.AddWithValue("v", tableVersion);
            if (await bump.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) != 1)
            {
                await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
                return false;
            }
        }

        if (!await change(connection, transaction).ConfigureAwait(false))
        {
            await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
            return false;
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    private void Bind(NpgsqlCommand command, MembershipEntry entry)
    {
        command.Parameters.AddWithValue("c", clusterId);
        command.Parameters.AddWithValue("s", entry.Silo.ToString());
        command.Parameters.AddWithValue("st", (int)entry.Status);
        command.Parameters.AddWithValue("start", entry.StartTime);
        command.Parameters.AddWithValue("alive", entry.IAmAliveTime);
        command.Parameters.AddWithValue("sus", JsonSerializer.Serialize(entry.Suspicions.Select(v => new StoredVote(v.Voter.ToString(), v.Time))));
        command.Parameters.AddWithValue("meta", JsonSerializer.Serialize(entry.Metadata));
    }

    private async Task EnsureAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _schemaReady) == 1)
        {
            return;
        }

        await PostgreSqlSchema.EnsureAsync(dataSource, cancellationToken).ConfigureAwait(false);
        using var command = dataSource.CreateCommand("INSERT INTO moe_membership_version (cluster_id, version) VALUES (@c, 0) ON CONFLICT DO NOTHING");
        command.Parameters.AddWithValue("c", clusterId);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        Volatile.Write(ref _schemaReady, 1);
    }

    private sealed record StoredVote(string Voter, DateTimeOffset Time);
}
