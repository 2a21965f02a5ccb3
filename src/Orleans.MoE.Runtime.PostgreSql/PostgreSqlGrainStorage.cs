using Npgsql;
using Orleans.MoE.Runtime.Storage;

namespace Orleans.MoE.Runtime.PostgreSql;

/// <summary>Grain state in PostgreSQL; a write or clear with a stale ETag changes nothing and throws <see cref="InconsistentStateException"/>.</summary>
public sealed class PostgreSqlGrainStorage(NpgsqlDataSource dataSource, string serviceId) : IGrainStorage
{
    private int _schemaReady;

    public async Task<(byte[]? Data, string? ETag)> ReadAsync(string stateName, GrainId grain, CancellationToken cancellationToken)
    {
        await EnsureAsync(cancellationToken).ConfigureAwait(false);
        using var command = dataSource.CreateCommand("SELECT payload, etag FROM moe_grain_state WHERE service_id = @svc AND state_name = @n AND grain_id = @g");
        Bind(command, stateName, grain);
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? (reader.GetFieldValue<byte[]>(0), reader.GetString(1)) : (null, null);
    }

    public async Task<string> WriteAsync(string stateName, GrainId grain, byte[] data, string? expectedETag, CancellationToken cancellationToken)
    {
        await EnsureAsync(cancellationToken).ConfigureAwait(false);
        var etag = Guid.NewGuid().ToString("N");
        using var command = dataSource.CreateCommand(expectedETag is null
            ? "INSERT INTO moe_grain_state (service_id, state_name, grain_id, etag, payload) VALUES (@svc, @n, @g, @etag, @data) ON CONFLICT DO NOTHING"
            : "UPDATE moe_grain_state SET etag = @etag, payload = @data, modified = now() WHERE service_id = @svc AND state_name = @n AND grain_id = @g AND etag = @expected");
        Bind(command, stateName, grain);
        command.Parameters.AddWithValue("etag", etag);
        command.Parameters.AddWithValue("data", data);
        if (expectedETag is not null)
        {
            command.Parameters.AddWithValue("expected", expectedETag);
        }

        if (await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) != 1)
        {
            throw new InconsistentStateException($"state '{stateName}' of {grain}: ETag {expectedETag ?? "(none)"} is stale");
        }

        return etag;
    }

    public async Task ClearAsync(string stateName, GrainId grain, string? expectedETag, CancellationToken cancellationToken)
    {
        await EnsureAsync(cancellationToken).ConfigureAwait(false);
        using var command = dataSource.CreateCommand("DELETE FROM moe_grain_state WHERE service_id = @svc AND state_name = @n AND grain_id = @g AND etag = @expected");
        Bind(command, stateName, grain);
        command.Parameters.AddWithValue("expected", expectedETag ?? "");
        if (await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) != 1 && expectedETag is not null)
        {
            throw new InconsistentStateException($"state '{stateName}' of {grain}: ETag {expectedETag} is stale");
        }
    }

    private void Bind(NpgsqlCommand command, string stateName, GrainId grain)
    {
        command.Parameters.AddWithValue("svc", serviceId);
        command.Parameters.AddWithValue("n", stateName);
        command.Parameters.AddWithValue("g", grain.ToString());
    }

    private async Task EnsureAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _schemaReady) == 0)
        {
            await PostgreSqlSchema.EnsureAsync(dataSource, cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _schemaReady, 1);
        }
    }
}
