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
        var served = 0;
        var lines = await ServeAsync([], async (http, port) =>
        {
            served = port;
            using var content = new StringContent("""{"model":"moe-tiny-py","messages":[{"role":"user","content":"def add(a, b):"}],"max_tokens":6,"temperature":0}""", Encoding.UTF8, "application/json");
            using var response = await http.PostAsync("/v1/chat/completions", content);
            var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal(200, (int)response.StatusCode);
            Assert.Equal(6, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
            Assert.Contains("<title>", await http.GetStringAsync("/"), StringComparison.Ordinal);
        });

        Assert.Contains(lines, l => l.Contains($"Orleans.MoE serving moe-tiny-py in this process at http://127.0.0.1:{served}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Serve_with_device_ilgpu_cpu_runs_the_experts_there_and_completes_as_the_cpu_engine()
    {
        const string prompt = "def add(a, b):";
        var (generated, expected, generateError) = await MoeProcess.RunAsync("generate", "--prompt", prompt, "--max-tokens", "12");
        Assert.True(generated == 0, generateError);

        var lines = await ServeAsync(["--device", "ilgpu-cpu"], async (http, _) =>
        {
            using var content = new StringContent(JsonSerializer.Serialize(new { model = "moe-tiny-py", prompt, max_tokens = 12, temperature = 0 }), Encoding.UTF8, "application/json");
            using var response = await http.PostAsync("/v1/completions", content);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, body);
            Assert.Equal(expected.TrimEnd('\n'), JsonDocument.Parse(body).RootElement.GetProperty("choices")[0].GetProperty("text").GetString());

            // The dashboard's data names the device and the memory the experts hold on it.
            var silo = default(JsonElement);
            Assert.True(await Eventually.TrueAsync(async () =>
            {
                silo = JsonDocument.Parse(await http.GetStringAsync("/api/mesh")).RootElement.GetProperty("silos")[0];
                return silo.TryGetProperty("device_memory_used", out var used) && used.GetInt64() > 0;
            }, 30), $"the mesh view shows device memory in use: {silo}");
            Assert.StartsWith("ilgpu-cpu: ", silo.GetProperty("device").GetString(), StringComparison.Ordinal);
            Assert.True(silo.GetProperty("device_memory").GetInt64() >= silo.GetProperty("device_memory_used").GetInt64());
        });

        Assert.Contains(lines, l => l.Contains("Experts run on ilgpu-cpu: ILGPU CPU accelerator", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Each_log_line_about_a_request_carries_that_requests_scope_and_no_other()
    {
        var lines = await ServeAsync(["--log-format", "json"], async (http, _) =>
        {
            foreach (var id in new[] { "first-request-41", "second-request-42" })
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
                {
                    Content = new StringContent("""{"model":"moe-tiny-py","prompt":"x = 1","max_tokens":2}""", Encoding.UTF8, "application/json"),
                };
                request.Headers.Add("X-Request-Id", id);
                using var response = await http.SendAsync(request);
                Assert.Equal(200, (int)response.StatusCode);
            }
        });

        // The scheduler (started by the first request) logs the second sequence's end without the first request's scope.
        var ended = lines.Where(l => l.Contains("Request second-request-42: sequence", StringComparison.Ordinal)).ToList();
        Assert.True(ended.Count > 0, string.Join('\n', lines));
        Assert.All(ended, l => Assert.DoesNotContain("first-request-41", l, StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("\"RequestId\":\"second-request-42\"", StringComparison.Ordinal));
        Assert.All(lines.Where(l => l.StartsWith('{')), l => Assert.Matches("^\\{\"Timestamp\":\"\\d{4}-\\d{2}-\\d{2}T", l));
    }

    [Fact]
    public async Task Ctrl_c_in_a_terminal_stops_the_readmes_dotnet_run_serve()
    {
        // The README's command in a terminal (util-linux script gives it one), then Ctrl-C typed into it.
        var port = FreePort();
        var start = new ProcessStartInfo("script")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = MoeProcess.RepositoryRoot,
        };
        foreach (var arg in new[] { "-qec", $"dotnet run --project src/Orleans.MoE.Cli -c Release --no-build -- serve --urls http://127.0.0.1:{port}", "/dev/null" })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment.Remove("MOE_MODEL");
        using var terminal = Process.Start(start)!;
        try
        {
            await ReadUntilAsync(terminal.StandardOutput, "serving", TimeSpan.FromSeconds(120));
            await terminal.StandardInput.WriteAsync('\u0003');
            await terminal.StandardInput.FlushAsync();

            using var stopped = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await terminal.WaitForExitAsync(stopped.Token);
            using var probe = new TcpClient();
            await Assert.ThrowsAnyAsync<SocketException>(() => probe.ConnectAsync(IPAddress.Loopback, port));
        }
        finally
        {
            if (!terminal.HasExited)
            {
                terminal.Kill(entireProcessTree: true);
            }
        }
    }

    /// <summary>
    /// Runs <c>moe serve</c> on a free port with <paramref name="arguments"/>, calls <paramref name="use"/> once it
    /// serves, stops it with SIGTERM (the host stops gracefully: exit code 0) and returns everything it printed.
    /// </summary>
    private static async Task<List<string>> ServeAsync(string[] arguments, Func<HttpClient, int, Task> use)
    {
        var port = FreePort();
        var start = ChildProcess.StartInfo("moe.dll", ["serve", "--urls", $"http://127.0.0.1:{port}", .. arguments]);
        start.Environment.Remove("MOE_MODEL");
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        var lines = new List<string>();
        try
        {
            await ReadUntilAsync(process.StandardOutput, "serving", TimeSpan.FromSeconds(60), lines);
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            await use(http, port);
        }
        finally
        {
            Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
            using var stopped = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            while (await process.StandardOutput.ReadLineAsync(stopped.Token) is { } line)
            {
                lines.Add(line);
            }

            await process.WaitForExitAsync(stopped.Token);
        }

        Assert.True(process.ExitCode == 0, await error);
        return lines;
    }

    private static async Task<string> ReadUntilAsync(StreamReader output, string marker, TimeSpan timeout, List<string>? lines = null)
    {
        using var cancel = new CancellationTokenSource(timeout);
        var seen = new StringBuilder();
        while (await output.ReadLineAsync(cancel.Token) is { } line)
        {
            seen.AppendLine(line);
            lines?.Add(line);
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
