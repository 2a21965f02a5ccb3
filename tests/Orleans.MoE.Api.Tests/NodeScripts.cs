using System.Text.Json;

namespace Orleans.MoE.Api.Tests;

/// <summary>
/// The Node.js scripts in js/ (the official openai client, playwright-core driving Debian's Chromium), run as
/// separate processes against a running front end; their packages come from <c>npm ci</c> in that folder,
/// which the README's test command runs.
/// </summary>
internal static class NodeScripts
{
    public static string Folder => Path.Combine(RepositoryPaths.Root, "tests", "Orleans.MoE.Api.Tests", "js");

    /// <summary>Runs <c>node script args</c>, asserts it exited 0, and parses the JSON line it printed last.</summary>
    public static Task<JsonElement> RunAsync(string script, params string[] args) => RunAsync(script, args, new Dictionary<string, string>());

    public static async Task<JsonElement> RunAsync(string script, string[] args, IReadOnlyDictionary<string, string> environment)
    {
        Assert.True(Directory.Exists(Path.Combine(Folder, "node_modules")),
            $"{Folder}/node_modules is missing: run `npm ci --prefix {Folder}` (scripts/test.sh does)");
        var start = ChildProcess.StartInfo("node", [Path.Combine(Folder, script), .. args]);
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        var (exit, output, error) = await ChildProcess.RunAsync(start, TimeSpan.FromMinutes(2));
        Assert.True(exit == 0, $"node {script} exited {exit}: {error}\n{output}");
        var last = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "";
        return JsonDocument.Parse(last).RootElement.Clone();
    }
}
