namespace Orleans.MoE.Silo.Tests;

/// <summary>The silo executable as operators run it: separate processes, real TCP, Orleans' ADO.NET membership and grain storage in a real PostgreSQL server.</summary>
public sealed class SiloHostTests(PostgreSqlServer postgres) : IClassFixture<PostgreSqlServer>
{
    private const string Demo = Providers.Demo;

    private Dictionary<string, string> Environment(string clusterId, int port, int gatewayPort) => new()
    {
        ["Cluster__ClusterId"] = clusterId,
        ["Silo__Host"] = "127.0.0.1",
        ["Silo__Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Silo__GatewayPort"] = gatewayPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Membership__ConnectionString"] = postgres.ConnectionString,
        ["Storage__ConnectionString"] = postgres.ConnectionString,
        [$"Mesh__Models__{Demo}"] = Path.Combine(SiloProcess.Root, "models", Demo),
        ["Mesh__Balancer__Interval"] = "00:00:00.500",
    };

    [Fact]
    public async Task Two_silo_processes_on_postgresql_serve_the_model_and_one_leaves_gracefully()
    {
        var clusterId = "proc-" + Guid.NewGuid().ToString("N")[..8];
        var gateways = new[] { SiloProcess.FreePort(), SiloProcess.FreePort() };
        await using var first = SiloProcess.Start("silo-config/multi-host.json", Environment(clusterId, SiloProcess.FreePort(), gateways[0]));
        await first.WaitStartedAsync();
        await using var second = SiloProcess.Start("silo-config/multi-host.json", Environment(clusterId, SiloProcess.FreePort(), gateways[1]));
        await second.WaitStartedAsync();

        await using var client = await MeshTestClient.ConnectAsync(gateways, clusterId);
        var expected = DemoGeneration.Expected(16);
        Assert.Equal(expected, await DemoGeneration.GenerateAsync(client, 16));

        Assert.Equal(0, await second.TerminateAsync());
        Assert.Contains("stopped", second.Output);
        Assert.Equal(expected, await DemoGeneration.GenerateAsync(client, 16));
        Assert.Equal(0, await first.TerminateAsync());
    }

    [Fact]
    public async Task The_gpu_silo_configuration_without_a_gpu_says_why_in_one_line_and_serves_beside_a_device_silo()
    {
        using (var probe = Orleans.MoE.Gpu.Device.GpuDevice.Choose(Orleans.MoE.Gpu.Device.DeviceKind.Cuda))
        {
            if (probe.IsGpu)
            {
                Console.WriteLine($"skipped: this machine has a GPU ({probe.Reason})");
                return;
            }
        }

        var clusterId = "gpu-" + Guid.NewGuid().ToString("N")[..8];
        var gateway = SiloProcess.FreePort();
        await using var cuda = SiloProcess.Start("silo-config/gpu-silo.json", Environment(clusterId, SiloProcess.FreePort(), gateway));
        await cuda.WaitStartedAsync();
        var device = Environment(clusterId, SiloProcess.FreePort(), SiloProcess.FreePort());
        device["Mesh__Device"] = "ilgpu-cpu";
        await using var simulated = SiloProcess.Start("silo-config/gpu-silo.json", device);
        await simulated.WaitStartedAsync();

        await using var client = await MeshTestClient.ConnectAsync([gateway], clusterId);
        Assert.Equal(DemoGeneration.Expected(8), await DemoGeneration.GenerateAsync(client, 8));
        Assert.Equal(0, await cuda.TerminateAsync());
        Assert.Equal(0, await simulated.TerminateAsync());

        var fallback = cuda.Output.Split('\n').Where(l => l.Contains("ExpertDevice", StringComparison.Ordinal)).ToList();
        Assert.Single(fallback);
        Assert.Matches(@"warn: Orleans\.MoE\.Grains\.Experts\.ExpertDevice\[\d+\]\s*$", fallback[0]);
        Assert.Matches(@"(?m)^\s*Mesh:Device is cuda but experts run on cpu: .*; running on the CPU engine\s*$", cuda.Output);
        Assert.DoesNotContain("   at ", cuda.Output, StringComparison.Ordinal);
        Assert.Contains("Experts run on ilgpu-cpu: ILGPU CPU accelerator", simulated.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_single_host_configuration_serves_the_demo_model()
    {
        var gateway = SiloProcess.FreePort();
        await using var silo = SiloProcess.Start("silo-config/single-host.json", new Dictionary<string, string>
        {
            ["Silo__Port"] = SiloProcess.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Silo__GatewayPort"] = gateway.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        await silo.WaitStartedAsync();

        await using var client = await MeshTestClient.ConnectAsync([gateway], "dev");
        Assert.Equal(DemoGeneration.Expected(8), await DemoGeneration.GenerateAsync(client, 8));
        Assert.Equal(0, await silo.TerminateAsync());

        // Every log line says when (UTC): "2026-12-05 08:30:00.123 warn: Category[id]".
        Assert.Matches(@"(?m)^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} (info|warn|fail|crit): ", silo.Output);
        Assert.DoesNotMatch(@"(?m)^(trce|dbug|info|warn|fail|crit): ", silo.Output);
    }

    [Fact]
    public async Task A_bad_configuration_exits_with_a_one_line_reason()
    {
        var environment = Environment("bad", SiloProcess.FreePort(), SiloProcess.FreePort());
        environment["Silo__Host"] = "0.0.0.0";
        await using var silo = SiloProcess.Start("silo-config/multi-host.json", environment);

        Assert.Equal(2, await silo.WaitForExitAsync());
        var lines = silo.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains("Silo:Host", lines[0]);

        await using var missing = SiloProcess.Start("silo-config/no-such-file.json", environment);
        Assert.Equal(2, await missing.WaitForExitAsync());
        Assert.Contains("does not exist", missing.Output);
    }

    [Fact]
    public async Task The_local_cluster_script_starts_silos_and_a_front_end_that_serve_and_stops_them()
    {
        var state = Directory.CreateTempSubdirectory("moe-cluster-state-").FullName;
        var port = SiloProcess.FreePort();
        var apiPort = SiloProcess.FreePort();
        try
        {
            var (exit, output) = await Shell("infra/scripts/start-cluster.sh",
                ["-n", "2", "-d", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-a", apiPort.ToString(System.Globalization.CultureInfo.InvariantCulture)], state);
            Assert.True(exit == 0, output);
            Assert.Contains("cluster id local", output);

            // Silo i's gateway is port + 2i - 1.
            await using (var client = await MeshTestClient.ConnectAsync([port + 1, port + 3], "local"))
            {
                Assert.Equal(DemoGeneration.Expected(8), await DemoGeneration.GenerateAsync(client, 8));
            }

            // The front end serves the cluster: the OpenAI API answers with the mesh's text.
            using (var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{apiPort}") })
            {
                using var content = new StringContent("""{"model":"moe-tiny-py","prompt":[1, 2, 3],"max_tokens":5,"temperature":0}""", System.Text.Encoding.UTF8, "application/json");
                using var response = await http.PostAsync("/v1/completions", content);
                var body = await response.Content.ReadAsStringAsync();
                Assert.True(response.IsSuccessStatusCode, body);
                Assert.Equal(5, System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
            }

            (exit, output) = await Shell(Path.Combine(state, "stop.sh"), [], state);
            Assert.True(exit == 0, output);
            Assert.Contains("cluster stopped", output);
            Assert.Contains("stopping the front end", output);
        }
        finally
        {
            if (File.Exists(Path.Combine(state, "stop.sh")))
            {
                await Shell(Path.Combine(state, "stop.sh"), [], state);
            }

            Directory.Delete(state, recursive: true);
        }
    }

    [Fact]
    public async Task The_local_cluster_in_the_foreground_outlives_a_killed_silo_and_stops_on_ctrl_c()
    {
        var state = Directory.CreateTempSubdirectory("moe-cluster-state-").FullName;
        var port = SiloProcess.FreePort();
        var apiPort = SiloProcess.FreePort();
        var start = ChildProcess.StartInfo("bash", ["infra/scripts/start-cluster.sh", "-n", "2", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-a", apiPort.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        start.Environment["MOE_CLUSTER_STATE"] = state;
        var output = new System.Text.StringBuilder();
        using var script = new System.Diagnostics.Process { StartInfo = start };
        script.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        script.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        string Output() { lock (output) { return output.ToString(); } }
        script.Start();
        script.BeginOutputReadLine();
        script.BeginErrorReadLine();
        try
        {
            Assert.True(await Eventually.TrueAsync(() => Output().Contains("Ctrl-C stops the cluster", StringComparison.Ordinal) || script.HasExited, 180), Output());
            Assert.False(script.HasExited, Output());
            var pids = File.ReadAllLines(Path.Combine(state, "pids")).Select(int.Parse).ToArray();

            // Silo 2 dies; the script says so and keeps the rest up: the front end completes through silo 1.
            System.Diagnostics.Process.GetProcessById(pids[1]).Kill();
            Assert.True(await Eventually.TrueAsync(() => Output().Contains("silo 2 (pid", StringComparison.Ordinal), 30), Output());
            Assert.Contains("1 of 2 silos serve on", Output(), StringComparison.Ordinal);
            using (var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{apiPort}"), Timeout = TimeSpan.FromSeconds(90) })
            {
                using var content = new StringContent("""{"model":"moe-tiny-py","prompt":[1, 2, 3],"max_tokens":5,"temperature":0}""", System.Text.Encoding.UTF8, "application/json");
                using var response = await http.PostAsync("/v1/completions", content);
                Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
            }

            Assert.False(script.HasExited, Output());

            // Ctrl-C: everything stops, without complaints about the silo that was already gone.
            using (var interrupt = System.Diagnostics.Process.Start("kill", ["-INT", script.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await interrupt.WaitForExitAsync();
            }

            using var stopping = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            await script.WaitForExitAsync(stopping.Token);
            Assert.Equal(0, script.ExitCode);
            Assert.Contains("cluster stopped", Output(), StringComparison.Ordinal);
            Assert.DoesNotContain("No such file", Output(), StringComparison.Ordinal);
            Assert.False(pids.Any(IsRunning), "a silo outlived the cluster");
        }
        finally
        {
            if (!script.HasExited)
            {
                script.Kill(entireProcessTree: true);
            }

            if (File.Exists(Path.Combine(state, "stop.sh")))
            {
                await Shell(Path.Combine(state, "stop.sh"), [], state);
            }

            Directory.Delete(state, recursive: true);
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static async Task<(int ExitCode, string Output)> Shell(string script, string[] args, string state)
    {
        var start = ChildProcess.StartInfo("bash", [script, .. args]);
        start.Environment["MOE_CLUSTER_STATE"] = state;
        var (exit, output, error) = await ChildProcess.RunAsync(start, TimeSpan.FromMinutes(3));
        return (exit, output + error);
    }
}
