using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace Orleans.MoE.Silo;

/// <summary>
/// Reaches each configured membership and storage server once, as the providers will (a PostgreSQL
/// connection; one page of the Azure account's tables or containers, which needs the key), before the
/// silo starts: a server that is down can be waited for here, where nothing of the silo is running yet.
/// </summary>
public static class ServerCheck
{
    /// <summary>Throws what the server's client threw (after the Azure SDK's own retries), else returns.</summary>
    public static async Task ReachAsync(IConfiguration configuration, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        foreach (var section in new[] { "Membership", "Storage" })
        {
            var connectionString = configuration[$"{section}:ConnectionString"];
            if (string.IsNullOrEmpty(connectionString))
            {
                continue;
            }

            switch (configuration[$"{section}:Provider"]?.ToUpperInvariant())
            {
                case "POSTGRESQL":
                    var connection = new NpgsqlConnection(connectionString);
                    await using (connection.ConfigureAwait(false))
                    {
                        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
                    }

                    break;
                case "AZURETABLE":
                    await foreach (var _ in new TableServiceClient(connectionString).QueryAsync(maxPerPage: 1, cancellationToken: cancellationToken).AsPages().ConfigureAwait(false))
                    {
                        break;
                    }

                    break;
                case "AZUREBLOB":
                    await foreach (var _ in new BlobServiceClient(connectionString).GetBlobContainersAsync(cancellationToken: cancellationToken).AsPages(pageSizeHint: 1).ConfigureAwait(false))
                    {
                        break;
                    }

                    break;
            }
        }
    }
}
