using System.Text.Json;

namespace Orleans.MoE.Cli.Tests;

public sealed class CheckpointCommandTests
{
    [Fact]
    public async Task Checkpoint_random_writes_a_model_that_info_and_generate_read()
    {
        var directory = Directory.CreateTempSubdirectory("moe-random-").FullName;
        try
        {
            var (exit, output, error) = await MoeProcess.RunAsync(
                "checkpoint", "random", "--output", directory, "--architecture", "qwen3_moe", "--hidden-size", "64", "--layers", "3",
                "--heads", "4", "--kv-heads", "2", "--experts", "6", "--top-k", "2", "--expert-size", "32", "--set", "head_dim=16",
                "--set", "mlp_only_layers=[1]", "--shard-size-mb", "1", "--seed", "5", "--json");
            Assert.True(exit == 0, error);
            var summary = JsonDocument.Parse(output).RootElement;
            Assert.Equal("qwen3_moe", summary.GetProperty("model_type").GetString());
            Assert.True(summary.GetProperty("shards").GetInt32() > 1);

            (exit, output, error) = await MoeProcess.RunAsync("info", "--model", directory, "--json");
            Assert.True(exit == 0, error);
            var info = JsonDocument.Parse(output).RootElement;
            Assert.Equal(3, info.GetProperty("layers").GetInt32());
            Assert.Equal(2, info.GetProperty("moe_layers").GetInt32());
            Assert.Equal(6, info.GetProperty("experts_per_layer").GetInt32());
            Assert.Equal(summary.GetProperty("parameters").GetInt64(), info.GetProperty("parameters").GetInt64());
            Assert.Equal(summary.GetProperty("bytes").GetInt64(), info.GetProperty("bytes").GetInt64());

            (exit, output, error) = await MoeProcess.RunAsync("generate", "--model", directory, "--prompt", "def f(x):", "--max-tokens", "4");
            Assert.True(exit == 0, error);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Checkpoint_random_refuses_an_unknown_architecture()
    {
        var (exit, _, error) = await MoeProcess.RunAsync("checkpoint", "random", "--output", Path.Combine(Path.GetTempPath(), "never-written"), "--architecture", "gpt_oss");
        Assert.Equal(1, exit);
        Assert.Contains("gpt_oss", error);
        Assert.Contains("mixtral", error);
    }
}
