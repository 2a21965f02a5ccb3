using System.CommandLine;
using System.Net;
using Orleans.MoE.Grains.Generation;
using Orleans.MoE.Grains.Models;
using Orleans.MoE.Runtime.Client;

namespace Orleans.MoE.Cli.Commands;

/// <summary>How a command reaches a running cluster: gateways, the cluster's secret and id.</summary>
internal sealed class ClusterConnection
{
    public Option<string[]> Gateways { get; } = new("--gateway", "-g")
    {
        Description = "A silo to connect through, host:port (repeatable); with it the command runs against that cluster",
        AllowMultipleArgumentsPerToken = false,
    };

    public Option<string?> Secret { get; } = new("--secret") { Description = "The cluster's secret (default: $MOE_CLUSTER_SECRET)" };

    public Option<string?> ClusterId { get; } = new("--cluster-id") { Description = "The cluster's id (default: $MOE_CLUSTER_ID, else \"default\")" };

    public IEnumerable<Option> All => [Gateways, Secret, ClusterId];

    public static bool Given(ParseResult result, ClusterConnection connection) => result.GetValue(connection.Gateways) is { Length: > 0 };

    public async Task<ClusterClient> ConnectAsync(ParseResult result, CancellationToken cancellationToken)
    {
        var client = new ClusterClient(ClientOptions(result));
        try
        {
            await client.ConnectAsync(cancellationToken);
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }

        return client;
    }

    /// <summary>The client settings the options give: gateways, secret and cluster id (each with its environment default).</summary>
    public ClusterClientOptions ClientOptions(ParseResult result)
    {
        var gateways = (result.GetValue(Gateways) ?? []).Select(ParseEndPoint).ToList();
        if (gateways.Count == 0)
        {
            throw new ArgumentException("--gateway host:port is required to reach a cluster");
        }

        var secret = result.GetValue(Secret) ?? Environment.GetEnvironmentVariable("MOE_CLUSTER_SECRET");
        if (string.IsNullOrEmpty(secret))
        {
            throw new ArgumentException("the cluster's secret is required: --secret, or $MOE_CLUSTER_SECRET");
        }

        return new ClusterClientOptions
        {
            Gateways = gateways,
            ClusterSecret = secret,
            ClusterId = result.GetValue(ClusterId) ?? Environment.GetEnvironmentVariable("MOE_CLUSTER_ID") ?? Runtime.Configuration.ClusterOptions.DEFAULT_CLUSTER_ID,
        };
    }

    /// <summary>The model to use: the given name, else the mesh's only model.</summary>
    public static async Task<string> ModelAsync(ClusterClient client, string? name)
    {
        if (!string.IsNullOrEmpty(name))
        {
            return name;
        }

        var models = await client.GrainFactory.GetGrain<IMeshInfoGrain>("mesh").GetModelsAsync();
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
        catch (Runtime.RemoteGrainException e)
        {
            var typed = MeshErrors.Typed(e);
            await Console.Error.WriteLineAsync($"error: {(typed == e && e.Message.StartsWith(e.TypeName + ": ", StringComparison.Ordinal) ? e.Message[(e.TypeName.Length + 2)..] : typed.Message)}");
            return 1;
        }
        catch (Exception e) when (e is MeshBusyException or UnknownModelException or ModelUnavailableException or ContextLengthExceededException
            or SequenceLostException or Grains.Gates.MeshStepException or Runtime.SiloUnavailableException or TimeoutException
            or System.Net.Sockets.SocketException or Runtime.Messaging.ConnectionClosedException or Runtime.Messaging.HandshakeException)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return 1;
        }
    }
}
