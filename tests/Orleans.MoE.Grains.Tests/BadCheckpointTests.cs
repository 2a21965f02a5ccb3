using Orleans.MoE.Grains.Cluster;
using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Catalog;

namespace Orleans.MoE.Grains.Tests;

/// <summary>A silo with a corrupt or different copy of the model refuses to host it; the rest of the mesh serves.</summary>
public sealed class BadCheckpointTests : IDisposable
{
    private const string Demo = "moe-tiny-py";
    private readonly string _directory = Directory.CreateTempSubdirectory("moe-bad-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string CorruptCopy()
    {
        foreach (var file in Directory.GetFiles(RepositoryPaths.DemoModel))
        {
            File.Copy(file, Path.Combine(_directory, Path.GetFileName(file)));
        }

        var shard = Directory.GetFiles(_directory, "model-*.safetensors").Order().Last();
        using (var stream = File.OpenWrite(shard))
        {
            stream.SetLength(stream.Length / 2);
        }

        return _directory;
    }

    [Fact]
    public async Task A_truncated_checkpoint_is_refused_with_its_file_named_and_the_mesh_serves()
    {
        await using var mesh = await MeshCluster.StartAsync(2, new Dictionary<string, string> { [Demo] = RepositoryPaths.DemoModel });
        var bad = await mesh.AddSiloAsync(o => o.Models[Demo] = CorruptCopy());

        var error = Assert.Throws<ModelUnavailableException>(() => MeshCluster.Service<MeshModels>(bad).Get(Demo));
        Assert.Contains("model-0000", error.Message);
        Assert.Equal(GenerationTests.Expected(GenerationTests.Prompts[1], 12), await mesh.GenerateAsync(Demo, GenerationTests.Prompts[1], 12));
        Assert.Empty(MeshCluster.Service<LocalExperts>(bad).Hosted);
        var published = MeshCluster.Service<MeshSilos>(mesh.Silos[0]).Metadata(bad.SiloAddress);
        Assert.DoesNotContain(SiloMetadataKeys.Model(Demo), published.Keys);
        Assert.Contains("model-0000", published[SiloMetadataKeys.ModelError(Demo)]);
    }

    [Fact]
    public async Task A_different_checkpoint_under_the_same_name_is_refused()
    {
        await using var mesh = await MeshCluster.StartAsync(2, new Dictionary<string, string> { [Demo] = RepositoryPaths.DemoModel });
        var other = await mesh.AddSiloAsync(o => o.Models[Demo] = RepositoryPaths.Fixture("mixtral-tiny"));

        var error = Assert.Throws<ModelUnavailableException>(() => MeshCluster.Service<MeshModels>(other).Get(Demo));
        Assert.Contains("differs from the mesh's", error.Message);
        Assert.Equal(GenerationTests.Expected(GenerationTests.Prompts[2], 12), await mesh.GenerateAsync(Demo, GenerationTests.Prompts[2], 12));
        Assert.Empty(MeshCluster.Service<LocalExperts>(other).Hosted);
    }
}
