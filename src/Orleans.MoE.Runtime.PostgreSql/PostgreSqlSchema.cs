using Npgsql;

namespace Orleans.MoE.Runtime.PostgreSql;

/// <summary>Creates the tables of infra/postgresql/schema.sql when they are missing.</summary>
public static class PostgreSqlSchema
{
    public static async Task EnsureAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        using var stream = typeof(PostgreSqlSchema).Assembly.GetManifestResourceStream("schema.sql")
            ?? throw new InvalidOperationException("schema.sql is not embedded");
        using var reader = new StreamReader(stream);
        var sql = await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
        using var command = dataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
