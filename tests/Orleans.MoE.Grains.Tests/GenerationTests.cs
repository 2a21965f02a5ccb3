using Orleans.MoE.Grains.Catalog;
using Orleans.MoE.Grains.Diagnostics;
using Orleans.MoE.Grains.Generation;
using Orleans.MoE.Models;
using Orleans.MoE.Models.Generation;

namespace Orleans.MoE.Grains.Tests;

/// <summary>Generation through the mesh: streaming, continuous batching, busy answers, cancellation and bad requests.</summary>
public sealed class GenerationTests
{
    private const string Demo = "moe-tiny-py";

    internal static readonly int[][] Prompts = [[1, 300, 301, 302], [1, 17, 900, 4000, 5], [1, 2000], [1, 44, 45, 46, 47, 48, 49], [1, 3], [1, 1024, 99]];

    internal static int[] Expected(int[] prompt, int tokens)
    {
        using var model = ModelLoader.Load(RepositoryPaths.DemoModel);
        return GreedyDecoder.Generate(model, prompt, tokens).ToArray();
    }

    private static Dictionary<string, string> DemoModels => new() { [Demo] = RepositoryPaths.DemoModel };

    [Fact]
    public async Task Concurrent_sequences_stream_the_single_process_greedy_tokens()
    {
        await using var mesh = await MeshCluster.StartAsync(3, DemoModels);
        var client = new MeshClient(mesh.Client);

        var outputs = await Task.WhenAll(Prompts.Select(p => mesh.GenerateAsync(Demo, p, 20, client)));

        for (var i = 0; i < Prompts.Length; i++)
        {
            Assert.Equal(Expected(Prompts[i], 20), outputs[i]);
        }
    }

    [Fact]
    public async Task Long_prompts_are_prefilled_over_several_steps_and_give_the_same_tokens()
    {
        await using var mesh = await MeshCluster.StartAsync(2, DemoModels, o =>
        {
            o.Scheduler.MaxBatchSequences = 2;
            o.Scheduler.MaxStepTokens = 3;
        });
        var client = new MeshClient(mesh.Client);
        int[] longPrompt = [1, .. Enumerable.Range(0, 12).Select(i => 40 + (i * 311 % 3000))];

        var outputs = await Task.WhenAll(mesh.GenerateAsync(Demo, longPrompt, 8, client), mesh.GenerateAsync(Demo, Prompts[3], 8, client));

        Assert.Equal(Expected(longPrompt, 8), outputs[0]);
        Assert.Equal(Expected(Prompts[3], 8), outputs[1]);
    }

    [Fact]
    public async Task A_full_queue_answers_busy_and_an_abandoned_sequence_frees_its_place()
    {
        // The sequences run on a silo with no room for experts; every expert lives on a slow silo, so the
        // first sequence is certainly still running when the second arrives.
        await using var mesh = await MeshCluster.StartAsync(0, DemoModels, o =>
        {
            o.Scheduler.MaxQueuedSequences = 1;
            o.Scheduler.MaxBatchSequences = 1;
        });
        var gateway = await mesh.AddSiloAsync(o => o.ExpertMemoryBytes = 1);
        await mesh.AddSiloAsync(silo: SlowExperts.On);
        var client = new MeshClient(MeshCluster.GrainFactory(gateway));

        await using var first = client.GenerateAsync(new GenerationRequest(Demo, Prompts[0], 400, [])).GetAsyncEnumerator();
        Assert.True(await first.MoveNextAsync());
        var busy = await Assert.ThrowsAsync<MeshBusyException>(() => mesh.GenerateAsync(Demo, Prompts[1], 4, client));
        Assert.Contains("busy", busy.Message);
        await first.DisposeAsync();

        // The caller went away: the sequence is cancelled and its place freed.
        var scheduler = MeshCluster.Service<GenerationScheduler>(gateway);
        Assert.True(await Eventually.TrueAsync(() => scheduler.Queued == 0, 10), "the abandoned sequence is cancelled");
    }

    [Fact]
    public async Task A_sequence_stops_at_its_stop_token_or_its_budget_and_says_which()
    {
        await using var mesh = await MeshCluster.StartAsync(1, DemoModels);
        var client = new MeshClient(mesh.Client);
        var expected = Expected(Prompts[0], 6);

        async Task<List<GeneratedToken>> Run(GenerationRequest request)
        {
            var tokens = new List<GeneratedToken>();
            await foreach (var token in client.GenerateAsync(request))
            {
                tokens.Add(token);
            }

            return tokens;
        }

        var stopped = await Run(new GenerationRequest(Demo, Prompts[0], 50, [expected[3]]));
        var budget = await Run(new GenerationRequest(Demo, Prompts[0], 5, []));

        Assert.Equal(expected[..(Array.IndexOf(expected, expected[3]) + 1)], stopped.Select(t => t.Id));
        Assert.Equal(FinishReason.Stop, stopped[^1].Finish);
        Assert.Equal(expected[..5], budget.Select(t => t.Id));
        Assert.Equal(FinishReason.Length, budget[^1].Finish);
        Assert.All(stopped[..^1].Concat(budget[..^1]), t => Assert.Null(t.Finish));
    }

    [Fact]
    public async Task Bad_requests_fail_clearly()
    {
        await using var mesh = await MeshCluster.StartAsync(1, DemoModels);
        var client = new MeshClient(mesh.Client);
        var context = MeshCluster.Model(mesh.Silos[0], Demo).Network.Config.MaxPositionEmbeddings;

        var unknown = await Assert.ThrowsAsync<UnknownModelException>(() => mesh.GenerateAsync("no-such-model", [1, 2], 3, client));
        Assert.Contains("no-such-model", unknown.Message);
        var tooLong = await Assert.ThrowsAsync<ContextLengthExceededException>(() => mesh.GenerateAsync(Demo, [1, 2, 3], context, client));
        Assert.Contains(context.ToString(System.Globalization.CultureInfo.InvariantCulture), tooLong.Message);
        await Assert.ThrowsAnyAsync<ArgumentException>(() => mesh.GenerateAsync(Demo, [1, 1 << 20], 3, client));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => mesh.GenerateAsync(Demo, [], 3, client));

        // The mesh still serves.
        Assert.Equal(Expected(Prompts[2], 5), await mesh.GenerateAsync(Demo, Prompts[2], 5, client));
    }

    [Fact]
    public async Task A_generation_longer_than_the_first_cache_grows_it_and_equals_one_process()
    {
        // The scheduler sizes a sequence's cache for the prompt and 256 tokens, then grows it.
        await using var mesh = await MeshCluster.StartAsync(2, DemoModels);
        var client = new MeshClient(MeshCluster.GrainFactory(mesh.Silos[0]));

        Assert.Equal(Expected(Prompts[1], 320), await mesh.GenerateAsync(Demo, Prompts[1], 320, client));
    }

    [Fact]
    public async Task Activations_travel_outside_orleans_messages_so_its_message_limit_does_not_bound_a_step()
    {
        // 96 KiB Orleans messages: a 300-token prompt's rows for one silo take up to 230 KiB (192 floats a token).
        await using var mesh = await MeshCluster.StartAsync(3, DemoModels, silo: s => s.Configure<Orleans.Configuration.SiloMessagingOptions>(o => o.MaxMessageBodySize = 96 * 1024));
        await mesh.WaitForSpreadAsync(Demo);
        var client = new MeshClient(MeshCluster.GrainFactory(mesh.Silos[0]));

        Assert.Equal(Expected(LongPrompt, 2), await mesh.GenerateAsync(Demo, LongPrompt, 2, client));
        Assert.True(mesh.Silos.Sum(s => MeshCluster.Service<MeshMetrics>(s).ExpertBatches) > 0, "no batch went to another silo");
    }

    [Fact]
    public async Task Batches_beyond_the_data_channel_limit_fail_with_a_clear_error_and_the_mesh_serves_on()
    {
        // A step's rows for one silo may take 32 KiB (42 tokens of the demo's 192 floats).
        await using var mesh = await MeshCluster.StartAsync(3, DemoModels, o => o.DataChannel.MaxPayloadBytes = 32 * 1024);
        await mesh.WaitForSpreadAsync(Demo);
        var client = new MeshClient(MeshCluster.GrainFactory(mesh.Silos[0]));

        var error = await Assert.ThrowsAsync<Gates.MeshStepException>(() => mesh.GenerateAsync(Demo, LongPrompt, 2, client));

        Assert.Contains("Mesh:DataChannel:MaxPayloadBytes", error.Message);
        Assert.Contains("MaxStepTokens", error.Message);
        Assert.Equal(Expected(Prompts[2], 5), await mesh.GenerateAsync(Demo, Prompts[2], 5, client));
    }

    private static int[] LongPrompt => Enumerable.Range(0, 300).Select(i => 3 + (i * 131 % 4000)).ToArray();
}
