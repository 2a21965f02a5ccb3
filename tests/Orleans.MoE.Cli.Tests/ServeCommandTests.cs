using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Orleans.MoE.Cli.Tests;

/// <summary><c>moe serve</c>, the README's main command, as a process: it prints its URL, serves the demo model, and stops on SIGTERM.</summary>
public sealed class ServeCommandTests
{
    [Fact]
    public async Task Serve_prints_its_url_and_answers_the_openai_api_with_the_demo_model()
    {
        var port = FreePort();
        var start = ChildProcess.StartInfo("moe.dll", ["serve", "--urls", $"http://127.0.0.1:{port}"]);
        start.Environment.Remove("MOE_MODEL");
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        try
        {
            var banner = await ReadUntilAsync(process.StandardOutput, "serving", TimeSpan.FromSeconds(60));
            Assert.Contains($"Orleans.MoE serving moe-tiny-py in this process at http://127.0.0.1:{port}", banner);

            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            using var content = new StringContent("""{"model":"moe-tiny-py","messages":[{"role":"user","content":"def add(a, b):"}],"max_tokens":6,"temperature":0}""", Encoding.UTF8, "application/json");
            using var response = await http.PostAsync("/v1/chat/completions", content);
            var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal(200, (int)response.StatusCode);
            Assert.Equal(6, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
            Assert.Contains("<title>", await http.GetStringAsync("/"), StringComparison.Ordinal);
        }
        finally
        {
            // SIGTERM: the host stops gracefully.
            Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
            using var stopped = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await process.WaitForExitAsync(stopped.Token);
        }

        Assert.True(process.ExitCode == 0, await error);
    }

    private static async Task<string> ReadUntilAsync(StreamReader output, string marker, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        var seen = new StringBuilder();
        while (await output.ReadLineAsync(cancel.Token) is { } line)
        {
            seen.AppendLine(line);
            if (line.Contains(marker, StringComparison.Ordinal))
            {
                return line;
            }
        }

        throw new InvalidOperationException($"the process ended before printing '{marker}': {seen}");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
