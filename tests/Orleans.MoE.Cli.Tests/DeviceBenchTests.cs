using System.Text.Json;
using Orleans.MoE.Gpu.Device;
using Xunit.Abstractions;

namespace Orleans.MoE.Cli.Tests;

/// <summary>
/// <c>moe bench moe-block</c> and <c>moe bench decode --device</c> on ILGPU's CPU accelerator, where they run
/// scaled-down shapes in seconds: the JSON they print (the real shapes run on CUDA). Without a GPU, cuda is one line.
/// </summary>
public sealed class DeviceBenchTests(ITestOutputHelper log)
{
    [Fact]
    public async Task Moe_block_on_ilgpu_cpu_prints_the_block_against_copy_bandwidth_and_gemm_peak()
    {
        var (exit, output, error) = await MoeProcess.RunAsync("bench", "moe-block", "--device", "ilgpu-cpu", "--shape", "qwen3-30b-a3b", "--json");
        Assert.True(exit == 0, error);
        log.WriteLine(output);
        var json = JsonDocument.Parse(output).RootElement;
        Assert.Equal("moe-block", json.GetProperty("bench").GetString());
        Assert.StartsWith("ilgpu-cpu: ", json.GetProperty("device").GetString(), StringComparison.Ordinal);
        Assert.True(json.GetProperty("small").GetBoolean());
        Assert.True(json.GetProperty("copy").GetProperty("tb_per_s").GetDouble() > 0);
        Assert.True(json.GetProperty("gemm").GetProperty("tflop_per_s").GetDouble() > 0);
        var block = json.GetProperty("block");
        Assert.Equal("qwen3-30b-a3b-small", block.GetProperty("shape").GetString());
        Assert.Equal(16, block.GetProperty("experts").GetInt32());
        Assert.Equal(4, block.GetProperty("top_k").GetInt32());
        Assert.Equal("exact", block.GetProperty("precision").GetString());
        foreach (var key in new[] { "t1_ms", "t16_ms", "t1_tb_per_s_if_distinct_experts", "t16_tflop_per_s", "t1_fraction_of_bandwidth_roofline", "t16_fraction_of_gemm_peak" })
        {
            Assert.True(block.GetProperty(key).GetDouble() > 0, key);
        }

        // One token runs its pairs; on the CPU accelerator more tokens take the per-expert products (no simulated grouped GEMV).
        Assert.Equal("Pairs", block.GetProperty("t1_expert_path").GetString());
        Assert.Equal("GroupedGemm", block.GetProperty("t16_expert_path").GetString());
        Assert.Equal(
            block.GetProperty("t1_tb_per_s_if_distinct_experts").GetDouble() / json.GetProperty("copy").GetProperty("tb_per_s").GetDouble(),
            block.GetProperty("t1_fraction_of_bandwidth_roofline").GetDouble(), 9);
    }

    [Fact]
    public async Task Decode_on_ilgpu_cpu_runs_a_random_model_made_in_memory_and_the_demo_checkpoint()
    {
        var random = await MoeProcess.RunAsync("bench", "decode", "--device", "ilgpu-cpu", "--random", "mixtral-8x7b", "--layers", "1", "--tokens", "3", "--precision", "bf16-activations", "--json");
        Assert.True(random.ExitCode == 0, random.Error);
        var json = JsonDocument.Parse(random.Output).RootElement;
        Assert.Equal("random mixtral-8x7b-small", json.GetProperty("model").GetString());
        var decode = json.GetProperty("decode");
        Assert.Equal(1, decode.GetProperty("layers").GetInt32());
        Assert.Equal(3, decode.GetProperty("decode_steps").GetInt32());
        Assert.Equal("bf16-activations", decode.GetProperty("precision").GetString());
        Assert.True(decode.GetProperty("decode_tokens_per_s").GetDouble() > 0);
        Assert.True(decode.GetProperty("fraction_of_bandwidth_roofline").GetDouble() > 0);

        var demo = await MoeProcess.RunAsync("bench", "decode", "--device", "ilgpu-cpu", "--tokens", "2", "--json");
        Assert.True(demo.ExitCode == 0, demo.Error);
        var checkpoint = JsonDocument.Parse(demo.Output).RootElement;
        Assert.Equal("moe-tiny-py", checkpoint.GetProperty("model").GetString());
        Assert.Equal(4, checkpoint.GetProperty("decode").GetProperty("layers").GetInt32());
        Assert.Equal("exact", checkpoint.GetProperty("decode").GetProperty("precision").GetString());
    }

    [Fact]
    public async Task Cuda_benchmarks_without_a_gpu_say_why_in_one_line()
    {
        using (var probe = GpuDevice.Choose(DeviceKind.Cuda))
        {
            if (probe.IsGpu)
            {
                log.WriteLine($"skipped: this machine has a GPU ({probe.Reason}), where these run the real shapes");
                return;
            }
        }

        var block = await MoeProcess.RunAsync("bench", "moe-block", "--device", "cuda", "--json");
        Assert.Equal(1, block.ExitCode);
        Assert.Empty(block.Output);
        Assert.Matches("^error: moe bench moe-block needs a device, and there is none: .*\n$", block.Error);

        var random = await MoeProcess.RunAsync("bench", "decode", "--device", "cuda", "--random", "qwen3-30b-a3b", "--json");
        Assert.Equal(1, random.ExitCode);
        Assert.Matches("^error: --random and --layers need a device .*\n$", random.Error);
    }
}
