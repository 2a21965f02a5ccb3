using System.Globalization;

namespace Orleans.MoE.Silo.Tests;

/// <summary>Environment variables that point a moe-silo process at a cluster and at its membership and storage servers.</summary>
internal static class Providers
{
    public const string Demo = "moe-tiny-py";

    public static Dictionary<string, string> Silo(string clusterId, string serviceId, int port, int gatewayPort) => new()
    {
        ["Cluster__ClusterId"] = clusterId,
        ["Cluster__ServiceId"] = serviceId,
        ["Silo__Host"] = "127.0.0.1",
        ["Silo__Port"] = port.ToString(CultureInfo.InvariantCulture),
        ["Silo__GatewayPort"] = gatewayPort.ToString(CultureInfo.InvariantCulture),
        [$"Mesh__Models__{Demo}"] = Path.Combine(SiloProcess.Root, "models", Demo),
        ["Mesh__Balancer__Interval"] = "00:00:00.500",
    };

    /// <summary>Membership and grain state on Azure Storage (Azurite): Azure Table clustering, the state in <paramref name="storage"/> (AzureTable or AzureBlob).</summary>
    public static Dictionary<string, string> OnAzure(this Dictionary<string, string> environment, AzuriteServer azurite, string storage = "AzureBlob")
    {
        environment["Membership__Provider"] = "AzureTable";
        environment["Membership__ConnectionString"] = azurite.ConnectionString;
        environment["Storage__Provider"] = storage;
        environment["Storage__ConnectionString"] = azurite.ConnectionString;
        return environment;
    }

    /// <summary>Membership and grain state in PostgreSQL (Orleans' ADO.NET providers).</summary>
    public static Dictionary<string, string> OnPostgreSql(this Dictionary<string, string> environment, PostgreSqlServer postgres)
    {
        environment["Membership__Provider"] = "PostgreSql";
        environment["Membership__ConnectionString"] = postgres.ConnectionString;
        environment["Storage__Provider"] = "PostgreSql";
        environment["Storage__ConnectionString"] = postgres.ConnectionString;
        return environment;
    }

    public static string Unique(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..8];
}
