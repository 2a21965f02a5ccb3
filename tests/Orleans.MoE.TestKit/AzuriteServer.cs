using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace Orleans.MoE.Testing;

/// <summary>
/// A private Azurite (the Azure Storage emulator) for the tests: blob, queue and table services on free
/// loopback ports, in memory, stopped at the end. Started with --skipApiVersionCheck: Azure.Storage.Blobs
/// 12.30 sends an API version Azurite 3.37 does not know yet. The package is npm's azurite 3.37.0 from
/// tests/Orleans.MoE.Silo.Tests/js (installed by scripts/browser-and-node.sh).
/// </summary>
public sealed class AzuriteServer : IAsyncLifetime
{
    /// <summary>Azurite's one account and its well-known key (public: the emulator's documented development account).</summary>
    public const string AccountName = "devstoreaccount1";

    public const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private readonly StringBuilder _output = new();
    private Process? _process;

    public static string Executable => Path.Combine(RepositoryPaths.Root, "tests", "Orleans.MoE.Silo.Tests", "js", "node_modules", ".bin", "azurite");

    public int BlobPort { get; private set; }

    public int QueuePort { get; private set; }

    public int TablePort { get; private set; }

    /// <summary>The connection string with explicit endpoints (the ports are not Azurite's defaults).</summary>
    public string ConnectionString => ConnectionStringFor(BlobPort, QueuePort, TablePort, AccountKey);

    /// <summary>The same account with another (valid base-64) key: Azurite checks signatures and answers 403.</summary>
    public string ConnectionStringWithWrongKey => ConnectionStringFor(BlobPort, QueuePort, TablePort, Convert.ToBase64String(new byte[64]));

    /// <summary>A well-formed connection string to ports where nothing listens.</summary>
    public static string ConnectionStringToNothing()
    {
        var port = FreePort();
        return ConnectionStringFor(port, port, port, AccountKey);
    }

    public static string ConnectionStringFor(int blobPort, int queuePort, int tablePort, string key) =>
        $"DefaultEndpointsProtocol=http;AccountName={AccountName};AccountKey={key};" +
        $"BlobEndpoint=http://127.0.0.1:{blobPort}/{AccountName};QueueEndpoint=http://127.0.0.1:{queuePort}/{AccountName};TableEndpoint=http://127.0.0.1:{tablePort}/{AccountName};";

    public async Task InitializeAsync()
    {
        if (!File.Exists(Executable))
        {
            throw new InvalidOperationException($"{Executable} is missing: run scripts/browser-and-node.sh (npm ci in tests/Orleans.MoE.Silo.Tests/js)");
        }

        (BlobPort, QueuePort, TablePort) = (FreePort(), FreePort(), FreePort());
        var start = new ProcessStartInfo(Executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetTempPath(),
        };
        foreach (var arg in new[]
        {
            "--silent", "--inMemoryPersistence", "--skipApiVersionCheck",
            "--blobHost", "127.0.0.1", "--blobPort", BlobPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--queueHost", "127.0.0.1", "--queuePort", QueuePort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--tableHost", "127.0.0.1", "--tablePort", TablePort.ToString(System.Globalization.CultureInfo.InvariantCulture),
        })
        {
            start.ArgumentList.Add(arg);
        }

        _process = Process.Start(start)!;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        // Up when all three services accept connections (Node takes a few seconds on a busy machine).
        var deadline = DateTime.UtcNow.AddSeconds(60);
        foreach (var port in new[] { BlobPort, QueuePort, TablePort })
        {
            while (!await AcceptsAsync(port))
            {
                if (_process.HasExited || DateTime.UtcNow > deadline)
                {
                    string output;
                    lock (_output)
                    {
                        output = _output.ToString();
                    }

                    throw new InvalidOperationException($"azurite did not start (exit {(_process.HasExited ? _process.ExitCode : "none")}):\n{output}");
                }

                await Task.Delay(100);
            }
        }
    }

    public async Task DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process?.Dispose();
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }

    private static async Task<bool> AcceptsAsync(int port)
    {
        using var client = new TcpClient();
        try
        {
            await client.ConnectAsync(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
