using System.CommandLine;
using System.Net;
using Microsoft.Extensions.Configuration;
using Orleans.MoE.Grains;
using Orleans.MoE.Grains.Catalog;
using Orleans.MoE.Grains.Generation;
using Orleans.MoE.Grains.Hosting;

namespace Orleans.MoE.Cli.Commands;

/// <summary>How a command reaches a running cluster: its silos' gateway endpoints and the cluster's id.</summary>
internal sealed class ClusterConnection
{
    public Option<string[]> Gateways { get; } = new("--gateway", "-g")
    {
        Description = "A silo to connect through, host:port (repeatable); with it the command runs against that cluster",
        AllowMultipleArgumentsPerToken = false,
    };

    public Option<string?> ClusterId { get; } = new("--cluster-id") { Description = "The cluster's id (default: $MOE_CLUSTER_ID, else \"default\")" };

    public IEnumerable<Option> All => [Gateways, ClusterId];

    public static bool Given(ParseResult result, ClusterConnection connection) => result.GetValue(connection.Gateways) is { Length: > 0 };

    /// <summary>
    /// An Orleans client connected through the given gateways; with mutual TLS when the environment names
    /// a certificate as for silos (<c>Tls__CertificateFile</c>, <c>Tls__KeyFile</c>, <c>Tls__AuthorityFile</c>).
    /// </summary>
    public Task<MeshConnection> ConnectAsync(ParseResult result, CancellationToken cancellationToken) =>
        MeshConnection.ConnectAsync(GatewayEndPoints(result), ClusterIdOf(result), EnvironmentTls(), cancellationToken);

    /// <summary>The "Tls" settings from the environment, or null.</summary>
    public static MeshTls? EnvironmentTls() => MeshTls.FromConfiguration(new ConfigurationBuilder().AddEnvironmentVariables().Build());

    /// <summary>The gateways given (at least one).</summary>
    public IReadOnlyList<IPEndPoint> GatewayEndPoints(ParseResult result)
    {
        var gateways = (result.GetValue(Gateways) ?? []).Select(ParseEndPoint).ToList();
        return gateways.Count > 0 ? gateways : throw new ArgumentException("--gateway host:port is required to reach a cluster");
    }

    /// <summary>The cluster id given, else $MOE_CLUSTER_ID, else the default.</summary>
    public string ClusterIdOf(ParseResult result) =>
        result.GetValue(ClusterId) ?? Environment.GetEnvironmentVariable("MOE_CLUSTER_ID") ?? MeshSiloHosting.DefaultClusterId;

    /// <summary>The model to use: the given name, else the mesh's only model.</summary>
    public static async Task<string> ModelAsync(IGrainFactory grains, string? name)
    {
        if (!string.IsNullOrEmpty(name))
        {
            return name;
        }

        var models = await grains.GetGrain<IMeshInfoGrain>("mesh").GetModelsAsync();
        return models.Length == 1 ? models[0]
            : models.Length == 0 ? throw new InvalidOperationException("the cluster serves no model")
            : throw new ArgumentException($"the cluster serves several models ({string.Join(", ", models)}): choose one with --model");
    }

    /// <summary>host:port, the host an IP address or a name.</summary>
    public static IPEndPoint ParseEndPoint(string text)
    {
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), System.Globalization.CultureInfo.InvariantCulture, out var port) || port is <= 0 or > 65535)
        {
            throw new ArgumentException($"'{text}' is not host:port");
        }

        var host = text[..colon];
        var address = IPAddress.TryParse(host, out var ip) ? ip
            : Dns.GetHostAddresses(host).FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
              ?? throw new ArgumentException($"'{host}' does not resolve to an IPv4 address");
        return new IPEndPoint(address, port);
    }

    /// <summary>Runs a cluster command body, turning the mesh's errors into one clear line.</summary>
    public static async Task<int> RunAsync(Func<Task<int>> body)
    {
        try
        {
            return await CommonOptions.RunAsync(body);
        }
        catch (Exception e) when (e is MeshBusyException or UnknownModelException or ModelUnavailableException or ContextLengthExceededException
            or SequenceLostException or Grains.Gates.MeshStepException or Grains.Experts.ExpertCapacityException or System.Net.Sockets.SocketException
            or OrleansException || MeshFaults.IsTransient(e))
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return 1;
        }
    }
}
