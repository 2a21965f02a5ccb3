using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Orleans.MoE.Silo.Tests;

/// <summary>A moe-silo process started by a test, as an operator would start it: config file, environment overrides.</summary>
internal sealed class SiloProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private SiloProcess(Process process)
    {
        _process = process;
    }

    public static string Root => RepositoryPaths.Root;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static SiloProcess Start(string? configFile, IReadOnlyDictionary<string, string> environment)
    {
        var start = ChildProcess.StartInfo("moe-silo.dll", configFile is null ? [] : ["--config", Path.Combine(Root, configFile)]);
        start.Environment["Logging__Console__FormatterName"] = "simple";
        // The silos of a test share this host: each data channel takes a free port (the multi-host file fixes one for firewalls).
        start.Environment["Mesh__DataChannel__Port"] = "0";
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var silo = new SiloProcess(Process.Start(start)!);
        silo._process.OutputDataReceived += (_, e) => silo.Append(e.Data);
        silo._process.ErrorDataReceived += (_, e) => silo.Append(e.Data);
        silo._process.BeginOutputReadLine();
        silo._process.BeginErrorReadLine();
        return silo;
    }

    /// <summary>Waits until the silo has joined (its log says "started").</summary>
    public async Task WaitStartedAsync()
    {
        var exited = _process.WaitForExitAsync();
        var done = await Task.WhenAny(_started.Task, exited, Task.Delay(TimeSpan.FromSeconds(60)));
        if (done != _started.Task)
        {
            throw new InvalidOperationException($"moe-silo did not start:\n{Output}");
        }
    }

    /// <summary>SIGTERM (what systemd sends), then waits for the exit code.</summary>
    public async Task<int> TerminateAsync()
    {
        await SignalAsync("TERM");
        return await WaitForExitAsync();
    }

    /// <summary>Sends a signal: KILL (a crash), STOP (a hung process), CONT.</summary>
    public async Task SignalAsync(string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
    }

    public async Task<int> WaitForExitAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await _process.WaitForExitAsync(timeout.Token);
        return _process.ExitCode;
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            await SignalAsync("CONT");
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }

        if (line.StartsWith("Silo ", StringComparison.Ordinal) && line.Contains(" started", StringComparison.Ordinal))
        {
            _started.TrySetResult();
        }
    }
}
