using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Gpu.Experts;
using Orleans.MoE.Grains.Cluster;
using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Models.Generation;
using Orleans.MoE.Models.Verification;
using Xunit.Abstractions;

namespace Orleans.MoE.Grains.Tests;

/// <summary>
/// Experts on a silo's device (<c>Mesh:Device</c>), tested on ILGPU's CPU accelerator (<c>ilgpu-cpu</c>), which
/// runs the same kernels as CUDA: the outputs, the device memory an expert holds, placement's preference
/// for GPU silos, and <c>cuda</c> on a machine without one.
/// </summary>
public sealed class DeviceTests(ITestOutputHelper output)
{
    private const string Demo = "moe-tiny-py";
    private const string Bf16 = "mixtral-tiny-bf16";

    [Fact]
    public async Task Experts_on_ilgpu_cpu_silos_give_the_cpu_engines_outputs()
    {
        var models = new Dictionary<string, string> { [Demo] = RepositoryPaths.DemoModel, [Bf16] = RepositoryPaths.Fixture(Bf16) };
        await using var mesh = await MeshCluster.StartAsync(2, models, o => o.Device = "ilgpu-cpu");
        var silo = mesh.Silos[0];
        Assert.All(mesh.Silos, s => Assert.True(MeshCluster.Service<LocalExperts>(s).Device?.IsGpu, "every silo runs its experts on the device"));

        foreach (var (name, path) in models)
        {
            var model = MeshCluster.Model(silo, name);
            var checks = await Task.Run(() => ReferenceVerifier.Verify(model.Network, Path.Combine(path, "reference.safetensors"), name, MeshCluster.Executor(silo, name)).ToList());
            Assert.NotEmpty(checks);
            Assert.All(checks, c => Assert.True(c.Passed, $"{name} {c.Check}: |diff| {c.MaxAbsDiff} > {c.Tolerance} {c.Detail}"));
            output.WriteLine($"{name}: {checks.Count} reference checks passed, worst {checks.Max(c => c.MaxAbsDiff):E2}");

            int[] prompt = [1, 17, 42, 7, 300 % model.Network.VocabSize];
            var single = GreedyDecoder.Generate(model.Network, prompt, 12);
            var distributed = await mesh.GenerateAsync(name, prompt, 12);
            Assert.Equal(single, distributed);
        }

        // The experts that computed all this live on the devices, none in host memory.
        var hosted = mesh.ExpertsBySilo().SelectMany(s => s.Value.Select(k => (Silo: s.Key, Key: k))).ToList();
        Assert.NotEmpty(hosted);
        foreach (var (s, key) in hosted)
        {
            var expert = MeshCluster.Service<LocalExperts>(s).Acquire(key);
            if (expert is not null)
            {
                Assert.NotNull(expert.Device);
                Assert.Null(expert.Weights);
                expert.Release();
            }
        }
    }

    [Fact]
    public async Task An_experts_device_memory_is_taken_on_activation_and_freed_when_it_retires()
    {
        // No balancing rounds: only the calls below activate experts.
        await using var mesh = await MeshCluster.StartAsync(1, new Dictionary<string, string> { [Demo] = RepositoryPaths.DemoModel }, o =>
        {
            o.Device = "ilgpu-cpu";
            o.Balancer.Interval = TimeSpan.FromHours(1);
        });
        var silo = mesh.Silos[0];
        var local = MeshCluster.Service<LocalExperts>(silo);
        var device = local.Device?.Device ?? throw new InvalidOperationException("the silo has no device");
        var layout = MeshCluster.Model(silo, Demo).MoeBlock(1).Experts[3];
        var bytes = DeviceExpert.BytesOf(layout);
        Assert.Equal(layout.WeightBytes, bytes); // bf16 stays bf16 on the device
        Assert.Equal(0, device.Memory.WeightBytes);
        var free = local.Free;

        var expert = MeshCluster.GrainFactory(silo).GetGrain<IExpertGrain>(new ExpertKey(Demo, 1, 3).ToString());
        var info = await expert.DescribeAsync();

        Assert.Equal(bytes, info.WeightBytes);
        Assert.Equal(bytes, device.Memory.WeightBytes);
        Assert.True(device.Memory.AllocatedBytes >= bytes);
        Assert.Equal(free - bytes, local.Free);
        Assert.True(await Eventually.TrueAsync(() => Published(mesh, silo, SiloMetadataKeys.MemoryFree) == (free - bytes).ToString(System.Globalization.CultureInfo.InvariantCulture)),
            "the smaller free budget is published");
        Assert.Equal(device.Memory.TotalBytes.ToString(System.Globalization.CultureInfo.InvariantCulture), Published(mesh, silo, SiloMetadataKeys.DeviceMemory));

        await expert.RetireAsync();

        Assert.True(await Eventually.TrueAsync(() => device.Memory.WeightBytes == 0 && local.Free == free), $"weights freed: {device.Memory.WeightBytes} bytes left");
        Assert.Empty(local.Hosted);
    }

    [Fact]
    public async Task Placement_puts_experts_on_the_gpu_silo_while_it_has_room()
    {
        const int room = 3;
        await using var mesh = await MeshCluster.StartAsync(1, new Dictionary<string, string> { [Demo] = RepositoryPaths.DemoModel }, o => o.Balancer.Interval = TimeSpan.FromHours(1));
        var cpu = mesh.Silos[0];
        var layout = MeshCluster.Model(cpu, Demo).MoeBlock(0).Experts[0];
        var gpu = await mesh.AddSiloAsync(o =>
        {
            o.Device = "ilgpu-cpu";
            o.ExpertMemoryBytes = room * DeviceExpert.BytesOf(layout);
        });
        Assert.True(await Eventually.TrueAsync(() => MeshCluster.Service<MeshSilos>(cpu).Metadata(gpu.SiloAddress).GetValueOrDefault(SiloMetadataKeys.Gpu) == "true"),
            "the first silo sees the second's GPU");
        Assert.Null(MeshCluster.Service<MeshSilos>(cpu).Metadata(cpu.SiloAddress).GetValueOrDefault(SiloMetadataKeys.Gpu));

        var placed = new List<SiloAddress>();
        for (var e = 0; e < 6; e++)
        {
            placed.Add((await MeshCluster.GrainFactory(cpu).GetGrain<IExpertGrain>(new ExpertKey(Demo, 0, e).ToString()).DescribeAsync()).Silo);
        }

        output.WriteLine(string.Join(", ", placed.Select(p => p.Equals(gpu.SiloAddress) ? "gpu" : "cpu")));
        Assert.Equal(Enumerable.Repeat(gpu.SiloAddress, room).Concat(Enumerable.Repeat(cpu.SiloAddress, 6 - room)), placed);
        Assert.Equal(room, MeshCluster.Service<LocalExperts>(gpu).Hosted.Count);
    }

    [Fact]
    public async Task Mesh_device_cuda_without_a_gpu_logs_one_line_and_serves_on_the_cpu()
    {
        using (var probe = GpuDevice.Choose(DeviceKind.Cuda))
        {
            if (probe.IsGpu)
            {
                output.WriteLine($"skipped: this machine has a GPU ({probe.Reason})");
                return;
            }
        }

        var lines = new LogLines();
        await using var mesh = await MeshCluster.StartAsync(1, new Dictionary<string, string> { [Demo] = RepositoryPaths.DemoModel }, o => o.Device = "cuda",
            silo => silo.Services.AddSingleton<ILoggerProvider>(lines));
        var silo = mesh.Silos[0];
        var local = MeshCluster.Service<LocalExperts>(silo);
        Assert.Null(local.Device);
        var model = MeshCluster.Model(silo, Demo);

        int[] prompt = [1, 17, 42];
        Assert.Equal(GreedyDecoder.Generate(model.Network, prompt, 6), await mesh.GenerateAsync(Demo, prompt, 6));

        var said = lines.Of(typeof(ExpertDevice).FullName!);
        output.WriteLine(string.Join("\n", said));
        var line = Assert.Single(said);
        Assert.StartsWith("Warning Mesh:Device is cuda but experts run on cpu: ", line, StringComparison.Ordinal);
        Assert.EndsWith("running on the CPU engine", line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", string.Join("\n", lines.All), StringComparison.Ordinal);
        Assert.Null(MeshCluster.Service<MeshSilos>(silo).Metadata(silo.SiloAddress).GetValueOrDefault(SiloMetadataKeys.Gpu));
        Assert.NotEmpty(local.Hosted);
        foreach (var key in local.Hosted)
        {
            var expert = local.Acquire(key);
            Assert.NotNull(expert?.Weights);
            expert.Release();
        }
    }

    [Fact]
    public void Mesh_device_precision_reaches_the_device_and_its_line_and_a_bad_one_is_refused()
    {
        using var device = new ExpertDevice(
            Microsoft.Extensions.Options.Options.Create(new MeshOptions { Device = "ilgpu-cpu", DevicePrecision = "bf16-activations" }),
            Microsoft.Extensions.Logging.Abstractions.NullLogger<ExpertDevice>.Instance);
        Assert.Equal(GpuPrecision.Bf16Activations, device.Device!.Options.Precision);
        Assert.EndsWith(", bf16-activations (GEMMs round their activations to bf16)", device.Reason, StringComparison.Ordinal);

        var validator = new Orleans.MoE.Grains.Hosting.MeshOptionsValidator();
        Assert.True(validator.Validate(null, new MeshOptions { DevicePrecision = "exact" }).Succeeded);
        var refused = validator.Validate(null, new MeshOptions { DevicePrecision = "fp8" });
        Assert.True(refused.Failed);
        Assert.Equal("Mesh:DevicePrecision: unknown precision 'fp8': use one of exact, bf16-activations", Assert.Single(refused.Failures!));
    }

    private static string? Published(MeshCluster mesh, Orleans.TestingHost.InProcessSiloHandle silo, string key) =>
        MeshCluster.Service<MeshSilos>(mesh.Silos[0]).Metadata(silo.SiloAddress).GetValueOrDefault(key);

    /// <summary>Log lines by category, as "Level message".</summary>
    private sealed class LogLines : ILoggerProvider
    {
        private readonly List<(string Category, string Line)> _lines = [];

        public IEnumerable<string> All
        {
            get
            {
                lock (_lines)
                {
                    return _lines.Select(l => l.Line).ToList();
                }
            }
        }

        public List<string> Of(string category)
        {
            lock (_lines)
            {
                return _lines.Where(l => l.Category == category).Select(l => l.Line).ToList();
            }
        }

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(LogLines owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                lock (owner._lines)
                {
                    owner._lines.Add((category, $"{logLevel} {formatter(state, exception)}{(exception is null ? "" : "\n" + exception)}"));
                }
            }
        }
    }
}
