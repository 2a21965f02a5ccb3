namespace Orleans.MoE.Cli.Tests;

/// <summary>Runs the built <c>moe</c> program as a child process, as a user would.</summary>
internal static class MoeProcess
{
    public static string RepositoryRoot => RepositoryPaths.Root;

    public static string Fixture(string name) => Path.Combine(RepositoryRoot, "tests", "fixtures", name);

    public static Task<(int ExitCode, string Output, string Error)> RunAsync(params string[] args)
    {
        var start = ChildProcess.StartInfo("moe.dll", args);
        start.Environment.Remove("MOE_MODEL");
        return ChildProcess.RunAsync(start, TimeSpan.FromMinutes(2));
    }
}
