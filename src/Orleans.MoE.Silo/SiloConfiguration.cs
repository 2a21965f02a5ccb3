using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Microsoft.Extensions.Configuration;
using Orleans.MoE.Grains;
using Orleans.MoE.Grains.Hosting;

namespace Orleans.MoE.Silo;

/// <summary>A configuration the silo cannot start with; the message is the one line the operator sees.</summary>
public sealed class SiloConfigurationException(string message) : Exception(message)
{
    public SiloConfigurationException()
        : this("invalid silo configuration")
    {
    }

    public SiloConfigurationException(string message, Exception innerException)
        : this(message + ": " + innerException.Message)
    {
    }
}

/// <summary>
/// Applies the "Membership" and "Storage" sections' Orleans providers to a silo:
/// Membership:Provider Localhost (one host; the default), PostgreSql (ADO.NET clustering) or AzureTable
/// (Azure Table clustering), with Membership:ConnectionString (and, for AzureTable, an optional Membership:Table);
/// Storage:Provider Memory (the default), PostgreSql (ADO.NET grain storage), AzureTable or AzureBlob (Azure
/// Storage grain storage), with Storage:ConnectionString (and an optional Storage:Table or Storage:Container).
/// The PostgreSQL database needs <c>infra/postgresql/orleans.sql</c> installed; Azure Storage tables and
/// containers are created by the silos.
/// </summary>
public static class SiloConfiguration
{
    /// <summary>The ADO.NET provider name Orleans loads Npgsql by.</summary>
    public const string PostgreSqlInvariant = "Npgsql";

    /// <summary>The table Orleans' Azure clustering keeps membership in unless Membership:Table names another.</summary>
    public const string DefaultMembershipTable = "OrleansSiloInstances";

    /// <summary>The table the mesh's grain state goes to with Storage:Provider AzureTable, unless Storage:Table names another.</summary>
    public const string DefaultStateTable = "OrleansGrainState";

    /// <summary>The blob container the mesh's grain state goes to with Storage:Provider AzureBlob, unless Storage:Container names another.</summary>
    public const string DefaultStateContainer = "grainstate";

    public static void ApplyProviders(ISiloBuilder silo, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(silo);
        ArgumentNullException.ThrowIfNull(configuration);
        try
        {
            switch (configuration["Membership:Provider"] ?? "Localhost")
            {
                case var p when p.Equals("Localhost", StringComparison.OrdinalIgnoreCase):
                    silo.UseLocalCluster(configuration);
                    break;
                case var p when p.Equals("PostgreSql", StringComparison.OrdinalIgnoreCase):
                    var membership = Required(configuration, "Membership:ConnectionString");
                    silo.UseMeshEndpoints(configuration);
                    silo.UseAdoNetClustering(o =>
                    {
                        o.Invariant = PostgreSqlInvariant;
                        o.ConnectionString = membership;
                    });
                    break;
                case var p when p.Equals("AzureTable", StringComparison.OrdinalIgnoreCase):
                    var tables = TableService(configuration, "Membership:ConnectionString");
                    var membershipTable = TableName(configuration, "Membership:Table", DefaultMembershipTable);
                    silo.UseMeshEndpoints(configuration);
                    silo.UseAzureStorageClustering(o =>
                    {
                        o.TableServiceClient = tables;
                        o.TableName = membershipTable;
                    });
                    break;
                case var other:
                    throw new SiloConfigurationException($"Membership:Provider '{other}' is not one of Localhost, PostgreSql, AzureTable");
            }
        }
        catch (FormatException e)
        {
            throw new SiloConfigurationException(e.Message);
        }

        switch (configuration["Storage:Provider"] ?? "Memory")
        {
            case var p when p.Equals("Memory", StringComparison.OrdinalIgnoreCase):
                silo.AddMemoryGrainStorage(MeshStorage.Name);
                break;
            case var p when p.Equals("PostgreSql", StringComparison.OrdinalIgnoreCase):
                var storage = Required(configuration, "Storage:ConnectionString");
                silo.AddAdoNetGrainStorage(MeshStorage.Name, o =>
                {
                    o.Invariant = PostgreSqlInvariant;
                    o.ConnectionString = storage;
                });
                break;
            case var p when p.Equals("AzureTable", StringComparison.OrdinalIgnoreCase):
                var tables = TableService(configuration, "Storage:ConnectionString");
                var stateTable = TableName(configuration, "Storage:Table", DefaultStateTable);
                silo.AddAzureTableGrainStorage(MeshStorage.Name, o =>
                {
                    o.TableServiceClient = tables;
                    o.TableName = stateTable;
                });
                break;
            case var p when p.Equals("AzureBlob", StringComparison.OrdinalIgnoreCase):
                var blobs = BlobService(configuration, "Storage:ConnectionString");
                var container = ContainerName(configuration, "Storage:Container", DefaultStateContainer);
                silo.AddAzureBlobGrainStorage(MeshStorage.Name, o =>
                {
                    o.BlobServiceClient = blobs;
                    o.ContainerName = container;
                });
                break;
            case var other:
                throw new SiloConfigurationException($"Storage:Provider '{other}' is not one of Memory, PostgreSql, AzureTable, AzureBlob");
        }
    }

    private static string Required(IConfiguration configuration, string key) =>
        configuration[key] is { Length: > 0 } value
            ? value
            : throw new SiloConfigurationException($"{key} is required (set it in the config file or as the environment variable {key.Replace(":", "__", StringComparison.Ordinal)})");

    /// <summary>A table client from an Azure Storage connection string; a malformed one fails here, in one line, rather than at the first request.</summary>
    private static TableServiceClient TableService(IConfiguration configuration, string key)
    {
        var connectionString = Required(configuration, key);
        try
        {
            return new TableServiceClient(connectionString);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException)
        {
            throw new SiloConfigurationException($"{key} is not an Azure Storage connection string ({e.Message})");
        }
    }

    private static BlobServiceClient BlobService(IConfiguration configuration, string key)
    {
        var connectionString = Required(configuration, key);
        try
        {
            return new BlobServiceClient(connectionString);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException)
        {
            throw new SiloConfigurationException($"{key} is not an Azure Storage connection string ({e.Message})");
        }
    }

    /// <summary>Azure's rule for table names: 3-63 letters and digits, starting with a letter.</summary>
    private static string TableName(IConfiguration configuration, string key, string fallback)
    {
        var name = configuration[key] is { Length: > 0 } value ? value : fallback;
        return name.Length is >= 3 and <= 63 && char.IsAsciiLetter(name[0]) && name.All(char.IsAsciiLetterOrDigit)
            ? name
            : throw new SiloConfigurationException($"{key} '{name}' is not an Azure table name (3-63 letters and digits, starting with a letter)");
    }

    /// <summary>Azure's rule for container names: 3-63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit.</summary>
    private static string ContainerName(IConfiguration configuration, string key, string fallback)
    {
        var name = configuration[key] is { Length: > 0 } value ? value : fallback;
        return name.Length is >= 3 and <= 63
            && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-')
            && name[0] != '-' && name[^1] != '-' && !name.Contains("--", StringComparison.Ordinal)
            ? name
            : throw new SiloConfigurationException($"{key} '{name}' is not an Azure blob container name (3-63 lower-case letters, digits and single hyphens)");
    }
}
