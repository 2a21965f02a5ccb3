using System.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Orleans.MoE.Api.Dashboard;

/// <summary>The dashboard's static files, embedded in this assembly (wwwroot/), served at <c>/</c> and by name.</summary>
internal static class DashboardFiles
{
    private static readonly Dictionary<string, string> s_types = new(StringComparer.OrdinalIgnoreCase)
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".svg"] = "image/svg+xml",
        [".png"] = "image/png",
        [".ico"] = "image/x-icon",
    };

    public static void Map(IEndpointRouteBuilder app)
    {
        var assembly = typeof(DashboardFiles).Assembly;
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith("wwwroot/", StringComparison.Ordinal)))
        {
            var bytes = Read(assembly, resource);
            var type = s_types.GetValueOrDefault(Path.GetExtension(resource), "application/octet-stream");
            var path = resource["wwwroot".Length..];
            app.MapGet(path, () => Results.Bytes(bytes, type));
            if (path == "/index.html")
            {
                app.MapGet("/", () => Results.Bytes(bytes, type));
            }
        }
    }

    private static byte[] Read(Assembly assembly, string resource)
    {
        using var stream = assembly.GetManifestResourceStream(resource)!;
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
