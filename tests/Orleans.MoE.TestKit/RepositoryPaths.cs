namespace Orleans.MoE.Testing;

/// <summary>Where the repository's test data lies, found by walking up to the folder holding Orleans.MoE.sln.</summary>
public static class RepositoryPaths
{
    public static string Root { get; } = FindRoot();

    public static string Fixtures => Path.Combine(Root, "tests", "fixtures");

    public static string DemoModel => Path.Combine(Root, "models", "moe-tiny-py");

    public static string Fixture(string name) => Path.Combine(Fixtures, name);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Orleans.MoE.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no Orleans.MoE.sln above {AppContext.BaseDirectory}");
    }
}
