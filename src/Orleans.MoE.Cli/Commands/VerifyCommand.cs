using System.CommandLine;
using System.Text.Json;
using Orleans.MoE.Cli.Cluster;
using Orleans.MoE.Gpu;
using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Grains.Catalog;
using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Gates;
using Orleans.MoE.Models.Layers;
using Orleans.MoE.Models.Verification;

namespace Orleans.MoE.Cli.Commands;

/// <summary><c>moe verify</c>: reproduce a reference file computed by the Hugging Face implementation.</summary>
internal static class VerifyCommand
{
    private static readonly JsonSerializerOptions s_json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static Command Create()
    {
        var model = CommonOptions.Model();
        var reference = new Option<string>("--reference", "-r") { Description = "Reference safetensors file (default: MODEL/reference.safetensors)" };
        var json = CommonOptions.Json();
        var device = CommonOptions.Device("cpu", "the model");
        var silos = new Option<int>("--silos")
        {
            Description = "Spread the model's experts over this many Orleans silos in this process (real TCP between them) and check the distributed forward; 0: one process",
            DefaultValueFactory = _ => 0,
        };
        var command = new Command("verify", "Check a model against reference outputs (full sequence, KV-cache decode, greedy ids); exits 1 when any check fails")
        {
            model, reference, json, device, silos,
        };
        command.SetAction((result, cancellationToken) => CommonOptions.RunAsync(async () =>
        {
            var directory = Path.GetFullPath(CommonOptions.ResolveModel(result.GetValue(model)));
            var referencePath = result.GetValue(reference) ?? Path.Combine(directory, "reference.safetensors");
            var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(directory));
            var text = !result.GetValue(json);
            List<VerificationCheck> checks;
            if (result.GetValue(silos) is var count and not 0)
            {
                if (count < 0)
                {
                    throw new ArgumentException("--silos needs a positive number of silos");
                }

                checks = await VerifyOnSilosAsync(directory, name, referencePath, count, result.GetValue(device)!, text, cancellationToken);
            }
            else
            {
                using var loaded = CommonOptions.LoadModel(directory);
                using var choice = GpuDevice.Choose(DeviceKinds.Parse(result.GetValue(device)));
                if (text)
                {
                    Console.WriteLine($"device {choice.Reason}");
                }

                using var gpu = choice.Device is { } accelerator ? GpuModel.Upload(accelerator, loaded) : null;
                checks = (gpu is null ? ReferenceVerifier.Verify(loaded, referencePath, name) : ReferenceVerifier.Verify(gpu, referencePath, name)).ToList();
            }

            foreach (var check in checks)
            {
                Console.WriteLine(result.GetValue(json)
                    ? JsonSerializer.Serialize(check, s_json)
                    : $"{(check.Passed ? "PASS" : "FAIL")} {check.Model} {check.Check,-22} max|diff| {check.MaxAbsDiff:g3} (tolerance {check.Tolerance:g3}){(check.Detail is null ? "" : " " + check.Detail)}");
            }

            if (!result.GetValue(json))
            {
                Console.WriteLine($"{checks.Count(c => c.Passed)} of {checks.Count} checks passed");
            }

            return checks.All(c => c.Passed) ? 0 : 1;
        }));
        return command;
    }

    /// <summary>
    /// The reference checks with every MoE layer run by the mesh: <paramref name="silos"/> Orleans silos in
    /// this process, the model's experts spread over them by placement and the balancer (on each silo's
    /// <paramref name="device"/>: Mesh:Device), each layer's tokens sent by the first silo's gate to the
    /// silos hosting their experts.
    /// </summary>
    private static async Task<List<VerificationCheck>> VerifyOnSilosAsync(string directory, string name, string referencePath, int silos, string device, bool text, CancellationToken cancellationToken)
    {
        await using var mesh = await LocalMesh.StartAsync(silos, new Dictionary<string, string> { [name] = directory }, o => o.Device = device, cancellationToken);
        var network = mesh.Service<MeshModels>(0).Get(name).Network;
        var experts = network.Layers.Select(l => l.FeedForward).OfType<SparseMoeBlock>().Sum(b => b.ExpertCount);
        if (!await mesh.WaitForExpertsAsync(experts, TimeSpan.FromSeconds(60), spread: true, cancellationToken))
        {
            throw new TimeoutException($"the {experts} experts of {name} were not all active and spread over the {silos} silos within a minute");
        }

        if (text)
        {
            var hosted = Enumerable.Range(0, silos).Select(i => mesh.Service<LocalExperts>(i).Hosted.Count);
            Console.WriteLine($"{silos} Orleans silos in this process; experts per silo: {string.Join(", ", hosted)}; experts run on {mesh.Service<LocalExperts>(0).Device?.Reason ?? "the CPU engine"}");
        }

        var executor = new MeshMoeExecutor(mesh.GrainFactory(0), name);
        return await Task.Run(() => ReferenceVerifier.Verify(network, referencePath, name, executor).ToList(), cancellationToken);
    }
}
