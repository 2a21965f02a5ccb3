using System.Diagnostics;

namespace Orleans.MoE.Cli.Tests;

/// <summary>Runs the built <c>moe</c> program as a child process, as a user would.</summary>
internal static class MoeProcess
{
    public static string RepositoryRoot => RepositoryPaths.Root;

    public static string Fixture(string name) => Path.Combine(RepositoryRoot, "tests", "fixtures", name);

    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = RepositoryRoot,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "moe.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment.Remove("MOE_MODEL");
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output, await error);
    }
}
