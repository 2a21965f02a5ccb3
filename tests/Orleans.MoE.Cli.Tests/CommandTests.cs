using System.Text.Json;

namespace Orleans.MoE.Cli.Tests;

public sealed class CommandTests
{
    [Fact]
    public async Task Verify_prints_one_json_object_per_check_and_succeeds_on_a_fixture()
    {
        var (exit, output, error) = await MoeProcess.RunAsync("verify", "--model", MoeProcess.Fixture("qwen2moe-tiny"), "--json");
        Assert.True(exit == 0, error);
        var checks = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Contains(checks, c => c.GetProperty("check").GetString() == "greedy");
        Assert.Contains(checks, c => c.GetProperty("check").GetString() == "decode_logits[1]");
        Assert.All(checks, c =>
        {
            Assert.Equal("qwen2moe-tiny", c.GetProperty("model").GetString());
            Assert.True(c.GetProperty("passed").GetBoolean());
            Assert.True(c.GetProperty("max_abs_diff").GetDouble() <= c.GetProperty("tolerance").GetDouble());
        });
    }

    [Fact]
    public async Task Verify_on_three_silos_prints_the_same_checks_and_passes()
    {
        var (single, one, _) = await MoeProcess.RunAsync("verify", "--model", MoeProcess.Fixture("deepseekv3-tiny"), "--json");
        var (exit, output, error) = await MoeProcess.RunAsync("verify", "--model", MoeProcess.Fixture("deepseekv3-tiny"), "--silos", "3", "--json");

        Assert.Equal(0, single);
        Assert.True(exit == 0, error);
        static List<string?> Names(string lines) =>
            lines.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("check").GetString()).ToList();
        Assert.Equal(Names(one), Names(output));
        Assert.DoesNotContain("\"passed\":false", output);

        var (_, text, _) = await MoeProcess.RunAsync("verify", "--silos", "2");
        Assert.Matches(@"2 Orleans silos in this process; experts per silo: [1-9]\d*, [1-9]\d*", text);
        Assert.Contains("12 of 12 checks passed", text);
    }

    [Fact]
    public async Task Verify_defaults_to_the_demo_model()
    {
        var (exit, output, error) = await MoeProcess.RunAsync("verify");
        Assert.True(exit == 0, error);
        Assert.Contains("PASS moe-tiny-py prompt3.greedy", output);
        Assert.Contains("12 of 12 checks passed", output);
    }

    [Fact]
    public async Task Verify_fails_with_exit_code_1_when_the_reference_disagrees()
    {
        // A model checked against another model's reference.
        var (exit, output, _) = await MoeProcess.RunAsync(
            "verify", "--model", MoeProcess.Fixture("mixtral-tiny-bf16"),
            "--reference", Path.Combine(MoeProcess.Fixture("olmoe-tiny"), "reference.safetensors"), "--json");
        Assert.Equal(1, exit);
        Assert.Contains("\"passed\":false", output);
    }

    [Fact]
    public async Task Generate_streams_the_demo_models_greedy_completion()
    {
        var sample = JsonDocument.Parse(File.ReadAllText(Path.Combine(MoeProcess.RepositoryRoot, "models", "moe-tiny-py", "training.json")))
            .RootElement.GetProperty("samples")[2];
        var prompt = sample.GetProperty("prompt").GetString()!;
        var (exit, output, error) = await MoeProcess.RunAsync("generate", "--prompt", prompt, "--max-tokens", "48");
        Assert.True(exit == 0, error);
        Assert.Equal(sample.GetProperty("text").GetString() + "\n", prompt + output);
    }

    [Fact]
    public async Task Generate_on_a_device_gives_the_cpu_engines_text_and_cuda_without_a_gpu_says_why_in_one_line()
    {
        string[] args = ["generate", "--prompt", "import os", "--max-tokens", "16"];
        var cpu = await MoeProcess.RunAsync(args);
        var device = await MoeProcess.RunAsync([.. args, "--device", "ilgpu-cpu"]);
        var cuda = await MoeProcess.RunAsync([.. args, "--device", "cuda"]);

        Assert.True(device.ExitCode == 0, device.Error);
        Assert.Equal(cpu.Output, device.Output);
        Assert.StartsWith("device ilgpu-cpu: ILGPU CPU accelerator", device.Error, StringComparison.Ordinal);
        Assert.True(cuda.ExitCode == 0, cuda.Error);
        Assert.Equal(cpu.Output, cuda.Output);
        var line = Assert.Single(cuda.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Matches("^device (cpu: .*; running on the CPU engine|cuda: .*)$", line);
    }

    [Fact]
    public async Task Seeded_sampling_repeats_and_differs_from_greedy()
    {
        string[] args = ["generate", "--prompt", "import os", "--max-tokens", "24", "--temperature", "1.0", "--top-k", "50", "--top-p", "0.95", "--seed", "7"];
        var first = await MoeProcess.RunAsync(args);
        var second = await MoeProcess.RunAsync(args);
        var greedy = await MoeProcess.RunAsync("generate", "--prompt", "import os", "--max-tokens", "24");
        Assert.Equal(0, first.ExitCode);
        Assert.Equal(first.Output, second.Output);
        Assert.NotEqual(greedy.Output, first.Output);
    }

    [Theory]
    [InlineData("--temperature", "-1", "temperature")]
    [InlineData("--top-p", "0", "top-p")]
    [InlineData("--top-k", "-3", "top-k")]
    public async Task Invalid_sampling_settings_are_one_clear_error(string option, string value, string named)
    {
        var (exit, output, error) = await MoeProcess.RunAsync("generate", "--prompt", "x", option, value);
        Assert.Equal(1, exit);
        Assert.Empty(output);
        Assert.Contains(named, error);
    }

    [Fact]
    public async Task Generate_without_a_prompt_is_a_usage_error()
    {
        var (exit, _, error) = await MoeProcess.RunAsync("generate");
        Assert.NotEqual(0, exit);
        Assert.Contains("--prompt", error);
    }

    [Fact]
    public async Task Info_describes_the_demo_model()
    {
        var (exit, output, error) = await MoeProcess.RunAsync("info", "--json");
        Assert.True(exit == 0, error);
        var info = JsonDocument.Parse(output).RootElement;
        Assert.Equal("mixtral", info.GetProperty("architecture").GetString());
        Assert.Equal(4, info.GetProperty("layers").GetInt32());
        Assert.Equal(8, info.GetProperty("experts_per_layer").GetInt32());
        Assert.Equal(2, info.GetProperty("experts_per_token").GetInt32());
        Assert.Equal(32, info.GetProperty("experts_total").GetInt32());
        Assert.Equal(2, info.GetProperty("shards").GetInt32());
        Assert.Equal(info.GetProperty("parameters").GetInt64() * 2, info.GetProperty("bytes").GetInt64());
    }

    [Fact]
    public async Task An_unknown_architecture_is_one_clear_error()
    {
        var directory = Directory.CreateTempSubdirectory("moe-cli-").FullName;
        try
        {
            foreach (var file in Directory.GetFiles(MoeProcess.Fixture("mixtral-tiny")))
            {
                File.Copy(file, Path.Combine(directory, Path.GetFileName(file)));
            }

            var config = Path.Combine(directory, "config.json");
            File.WriteAllText(config, File.ReadAllText(config).Replace("\"model_type\": \"mixtral\"", "\"model_type\": \"gpt_oss\""));
            var (exit, output, error) = await MoeProcess.RunAsync("info", "--model", directory);
            Assert.Equal(1, exit);
            Assert.Empty(output);
            Assert.Contains("unknown model_type 'gpt_oss'", error);
            Assert.Contains("mixtral", error);
            Assert.DoesNotContain("   at ", error);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task A_missing_model_directory_is_one_clear_error()
    {
        var (exit, _, error) = await MoeProcess.RunAsync("info", "--model", "/nonexistent/model");
        Assert.Equal(1, exit);
        Assert.StartsWith("error: ", error);
        Assert.Contains("/nonexistent/model", error);
    }
}
