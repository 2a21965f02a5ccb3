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
/// Membership:Provider Localhost (one host; the default) or PostgreSql (ADO.NET clustering, Membership:ConnectionString);
/// Storage:Provider Memory (the default) or PostgreSql (ADO.NET grain storage, Storage:ConnectionString).
/// The PostgreSQL database needs <c>infra/postgresql/orleans.sql</c> installed.
/// </summary>
public static class SiloConfiguration
{
    /// <summary>The ADO.NET provider name Orleans loads Npgsql by.</summary>
    public const string PostgreSqlInvariant = "Npgsql";

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
                case var other:
                    throw new SiloConfigurationException($"Membership:Provider '{other}' is not one of Localhost, PostgreSql");
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
            case var other:
                throw new SiloConfigurationException($"Storage:Provider '{other}' is not one of Memory, PostgreSql");
        }
    }

    private static string Required(IConfiguration configuration, string key) =>
        configuration[key] is { Length: > 0 } value
            ? value
            : throw new SiloConfigurationException($"{key} is required (set it in the config file or as the environment variable {key.Replace(":", "__", StringComparison.Ordinal)})");
}
