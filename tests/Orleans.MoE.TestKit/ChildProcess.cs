using System.Diagnostics;

namespace Orleans.MoE.Testing;

/// <summary>Child processes the tests start as a user would: a built program of this repository, or a script.</summary>
public static class ChildProcess
{
    /// <summary>Runs <paramref name="program"/> (a .dll beside the tests is run with dotnet) in the repository root, output captured.</summary>
    public static ProcessStartInfo StartInfo(string program, IEnumerable<string> args)
    {
        ArgumentNullException.ThrowIfNull(program);
        var dll = program.EndsWith(".dll", StringComparison.Ordinal);
        var start = new ProcessStartInfo(dll ? "dotnet" : program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = RepositoryPaths.Root,
        };
        if (dll)
        {
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, program));
        }

        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return start;
    }

    /// <summary>Runs to the end (or <paramref name="timeout"/>) and returns the exit code and both outputs.</summary>
    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(ProcessStartInfo start, TimeSpan timeout)
    {
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout);
        await process.WaitForExitAsync(cancel.Token);
        return (process.ExitCode, await output, await error);
    }
}
