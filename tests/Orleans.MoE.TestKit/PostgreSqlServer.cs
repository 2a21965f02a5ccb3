using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Xunit;

namespace Orleans.MoE.Testing;

/// <summary>
/// A private PostgreSQL server for the tests: initdb into a temporary folder, pg_ctl on a free port,
/// stopped and deleted at the end. Runs the server as the postgres user when the tests run as root
/// (initdb refuses root), with Orleans' ADO.NET schema installed. The binaries come from Debian's
/// postgresql package (scripts/postgres.sh).
/// </summary>
public sealed class PostgreSqlServer : IAsyncLifetime
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "moe-pg-" + Guid.NewGuid().ToString("N")[..8]);
    private string _bin = "";

    public int Port { get; private set; }

    public string ConnectionString => $"Host=127.0.0.1;Port={Port};Username=moe;Database=postgres;Pooling=true;Maximum Pool Size=50";

    public async Task InitializeAsync()
    {
        _bin = System.IO.Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).FirstOrDefault(d => File.Exists(Path.Combine(d, "initdb")))
            ?? throw new InvalidOperationException("PostgreSQL server binaries not found under /usr/lib/postgresql; run scripts/postgres.sh");
        System.IO.Directory.CreateDirectory(_directory);
        var root = Environment.UserName == "root";
        if (root)
        {
            await RunAsync("chown", "postgres", _directory);
        }

        Port = FreePort();
        await RunAsServerUserAsync(root, Path.Combine(_bin, "initdb"), "-D", Path.Combine(_directory, "data"), "-A", "trust", "-U", "moe");
        await StartAsync();
        await InstallOrleansSchemaAsync();
    }

    /// <summary>Starts the server (again, after <see cref="StopAsync"/>) on the same port, with the same data.</summary>
    public Task StartAsync() =>
        RunAsServerUserAsync(Environment.UserName == "root", Path.Combine(_bin, "pg_ctl"), "-D", Path.Combine(_directory, "data"), "-o", $"-p {Port} -k {_directory} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off", "-l", Path.Combine(_directory, "log"), "-w", "start");

    /// <summary>Stops the server (a database that is down); <see cref="StartAsync"/> brings it back.</summary>
    public Task StopAsync() =>
        RunAsServerUserAsync(Environment.UserName == "root", Path.Combine(_bin, "pg_ctl"), "-D", Path.Combine(_directory, "data"), "-m", "fast", "-w", "stop");

    /// <summary>Installs Orleans' ADO.NET schema (infra/postgresql/orleans.sql: membership and grain storage), as the start scripts do.</summary>
    public Task InstallOrleansSchemaAsync() =>
        RunAsync(Path.Combine(_bin, "psql"), "-h", "127.0.0.1", "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", "moe", "-d", "postgres",
            "-q", "-v", "ON_ERROR_STOP=1", "-f", Path.Combine(RepositoryPaths.Root, "infra", "postgresql", "orleans.sql"));

    public async Task DisposeAsync()
    {
        var root = Environment.UserName == "root";
        try
        {
            await RunAsServerUserAsync(root, Path.Combine(_bin, "pg_ctl"), "-D", Path.Combine(_directory, "data"), "-m", "immediate", "-w", "stop");
        }
        finally
        {
            System.IO.Directory.Delete(_directory, recursive: true);
        }
    }

    private static Task RunAsServerUserAsync(bool root, string program, params string[] args) =>
        root ? RunAsync("runuser", ["-u", "postgres", "--", program, .. args]) : RunAsync(program, args);

    private static async Task RunAsync(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed ({process.ExitCode}): {await error}{await output}");
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
