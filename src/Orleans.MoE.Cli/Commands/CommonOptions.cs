using System.CommandLine;
using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Models;
using Spectre.Console;

namespace Orleans.MoE.Cli.Commands;

/// <summary>Options and helpers the commands share.</summary>
internal static class CommonOptions
{
    /// <summary>The embedded default model, found beside the executable or above the working directory.</summary>
    public const string DemoModel = "models/moe-tiny-py";

    public static Option<string> Model(bool required = false) => new("--model", "-m")
    {
        Description = required
            ? "Model directory (config.json, safetensors, tokenizer.json)"
            : $"Model directory (config.json, safetensors, tokenizer.json); default: the demo model ({DemoModel}) or $MOE_MODEL",
        Required = required,
    };

    public static Option<bool> Json() => new("--json") { Description = "Print JSON instead of text" };

    /// <summary>
    /// <c>--device</c>: cuda, ilgpu-cpu, cpu or auto (<see cref="DeviceKinds"/>); <paramref name="defaultValue"/> when
    /// not given (null: not given, so configuration decides).
    /// </summary>
    public static Option<string?> Device(string? defaultValue, string what)
    {
        var option = new Option<string?>("--device")
        {
            Description = $"What runs {what}: cuda, ilgpu-cpu (the GPU kernels on ILGPU's CPU accelerator, slow: for tests), cpu (the CPU engine) or auto (CUDA when present); "
                + "without CUDA, cuda and auto say why in one line and run on the CPU engine"
                + (defaultValue is null ? "" : $" (default {defaultValue})"),
        };
        if (defaultValue is not null)
        {
            option.DefaultValueFactory = _ => defaultValue;
        }

        option.AcceptOnlyFromAmong([.. DeviceKinds.Names]);
        return option;
    }

    /// <summary><c>--precision</c>: what a device's GEMMs with bf16 weights do with their activations (<see cref="GpuPrecisions"/>).</summary>
    public static Option<string> Precision()
    {
        var option = new Option<string>("--precision")
        {
            Description = "exact (f32 activations split into two bf16 halves on cuBLAS; the CPU engine's 1e-4 tolerance) or bf16-activations "
                + $"(GEMMs round the activations to bf16: half the tensor-core work, {GpuOptions.Bf16ActivationsTolerance:0.##e0} relative tolerance; GEMVs stay exact)",
            DefaultValueFactory = _ => GpuPrecisions.Names[0],
        };
        option.AcceptOnlyFromAmong([.. GpuPrecisions.Names]);
        return option;
    }

    /// <summary>The model directory to use: the option, else $MOE_MODEL, else the demo model.</summary>
    public static string ResolveModel(string? option)
    {
        if (!string.IsNullOrEmpty(option))
        {
            return option;
        }

        var fromEnvironment = Environment.GetEnvironmentVariable("MOE_MODEL");
        if (!string.IsNullOrEmpty(fromEnvironment))
        {
            return fromEnvironment;
        }

        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, DemoModel);
                if (File.Exists(Path.Combine(candidate, "config.json")))
                {
                    return candidate;
                }
            }
        }

        throw new DirectoryNotFoundException($"no --model given and the demo model ({DemoModel}) was not found above {Environment.CurrentDirectory}");
    }

    /// <summary>Loads a model, with a progress bar while its weights are read when the terminal is interactive.</summary>
    public static CausalLanguageModel LoadModel(string directory) => Load(directory, ModelLoader.Load);

    /// <summary>Runs <paramref name="load"/>, showing its progress as a bar when the terminal is interactive.</summary>
    public static T Load<T>(string directory, Func<string, IProgress<(long Done, long Total)>?, T> load)
    {
        if (Console.IsOutputRedirected || Console.IsErrorRedirected || !AnsiConsole.Profile.Capabilities.Interactive)
        {
            return load(directory, null);
        }

        var loaded = default(T);
        AnsiConsole.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TransferSpeedColumn())
            .Start(context =>
            {
                var task = context.AddTask($"loading {Path.GetFileName(Path.TrimEndingDirectorySeparator(directory))}");
                loaded = load(directory, new Progress<(long Done, long Total)>(p =>
                {
                    task.MaxValue = p.Total;
                    task.Value = p.Done;
                }));
                task.Value = task.MaxValue;
            });
        return loaded!;
    }

    /// <summary>Runs a command body, turning expected failures (bad model files, bad arguments) into one clear line and exit code 1.</summary>
    public static async Task<int> RunAsync(Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (Exception e) when (e is Models.Checkpoints.CheckpointException or Models.Configuration.ModelConfigException or Text.Tokenization.TokenizerFormatException
            or IOException or ArgumentException or InvalidOperationException or UnauthorizedAccessException or Microsoft.Extensions.Options.OptionsValidationException)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            await Console.Error.WriteLineAsync("cancelled");
            return 130;
        }
    }
}
