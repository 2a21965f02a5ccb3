using Microsoft.Extensions.Configuration;
using Orleans.MoE.Runtime.Hosting;
using Orleans.MoE.Runtime.PostgreSql;

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
/// Applies the "Membership" and "Storage" sections' providers to a silo:
/// Membership:Provider InProcess (one host, the default) or PostgreSql (Membership:ConnectionString);
/// Storage:Provider Memory (the default), Disk (Storage:Directory) or PostgreSql (Storage:ConnectionString).
/// </summary>
public static class SiloConfiguration
{
    public static void ApplyProviders(ISiloBuilder silo, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(silo);
        ArgumentNullException.ThrowIfNull(configuration);
        var clusterId = configuration["Cluster:ClusterId"] ?? Runtime.Configuration.ClusterOptions.DEFAULT_CLUSTER_ID;
        switch (configuration["Membership:Provider"] ?? "InProcess")
        {
            case var p when p.Equals("InProcess", StringComparison.OrdinalIgnoreCase):
                silo.UseInMemoryMembership();
                break;
            case var p when p.Equals("PostgreSql", StringComparison.OrdinalIgnoreCase):
                silo.UsePostgreSqlMembership(Required(configuration, "Membership:ConnectionString"), clusterId);
                break;
            case var other:
                throw new SiloConfigurationException($"Membership:Provider '{other}' is not one of InProcess, PostgreSql");
        }

        switch (configuration["Storage:Provider"] ?? "Memory")
        {
            case var p when p.Equals("Memory", StringComparison.OrdinalIgnoreCase):
                silo.AddMemoryGrainStorage();
                break;
            case var p when p.Equals("Disk", StringComparison.OrdinalIgnoreCase):
                silo.AddDiskGrainStorage(Required(configuration, "Storage:Directory"));
                break;
            case var p when p.Equals("PostgreSql", StringComparison.OrdinalIgnoreCase):
                silo.AddPostgreSqlGrainStorage(Required(configuration, "Storage:ConnectionString"), clusterId);
                break;
            case var other:
                throw new SiloConfigurationException($"Storage:Provider '{other}' is not one of Memory, Disk, PostgreSql");
        }
    }

    private static string Required(IConfiguration configuration, string key) =>
        configuration[key] is { Length: > 0 } value
            ? value
            : throw new SiloConfigurationException($"{key} is required (set it in the config file or as the environment variable {key.Replace(":", "__", StringComparison.Ordinal)})");
}
