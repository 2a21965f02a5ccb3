using System.CommandLine;
using System.Text.Json;
using Orleans.MoE.Gpu;
using Orleans.MoE.Gpu.Device;
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
        var device = new Option<string>("--device") { Description = "cuda, ilgpu-cpu (the GPU kernels on ILGPU's CPU accelerator), cpu or auto (CUDA when present)", DefaultValueFactory = _ => "cpu" };
        var command = new Command("verify", "Check a model against reference outputs (full sequence, KV-cache decode, greedy ids); exits 1 when any check fails")
        {
            model, reference, json, device,
        };
        command.SetAction((result, _) => CommonOptions.RunAsync(() =>
        {
            var directory = CommonOptions.ResolveModel(result.GetValue(model));
            var referencePath = result.GetValue(reference) ?? Path.Combine(directory, "reference.safetensors");
            using var loaded = CommonOptions.LoadModel(directory);
            var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory)));
            using var choice = GpuDevice.Choose(DeviceKinds.Parse(result.GetValue(device)));
            if (!result.GetValue(json))
            {
                Console.WriteLine($"device {choice.Reason}");
            }

            using var gpu = choice.Device is { } accelerator ? GpuModel.Upload(accelerator, loaded) : null;
            var checks = (gpu is null ? ReferenceVerifier.Verify(loaded, referencePath, name) : ReferenceVerifier.Verify(gpu, referencePath, name)).ToList();
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

            return Task.FromResult(checks.All(c => c.Passed) ? 0 : 1);
        }));
        return command;
    }
}
