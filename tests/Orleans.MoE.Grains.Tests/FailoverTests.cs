using Microsoft.Extensions.DependencyInjection;
using Orleans.MoE.Grains.Diagnostics;
using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Generation;
using Orleans.TestingHost;

namespace Orleans.MoE.Grains.Tests;

/// <summary>Silos that die mid-generation: no sequence fails and greedy outputs are those of the run without the failure.</summary>
public sealed class FailoverTests
{
    private const string Demo = "moe-tiny-py";

    /// <summary>
    /// Tokens per sequence: the failure comes once every sequence has streamed 3, and the rest must still be
    /// coming then (with 40, a fast run had finished them all before the kill, and nothing was resubmitted).
    /// </summary>
    private const int Tokens = 160;

    private static Dictionary<string, string> DemoModels => new() { [Demo] = RepositoryPaths.DemoModel };

    /// <summary>Starts every prompt, waits until each has streamed a few tokens, runs <paramref name="failure"/>, and collects the outputs.</summary>
    private static Task<int[][]> GenerateThroughAsync(MeshClient client, int tokens, Func<Task> failure) =>
        GenerateThroughAsync(client, prompt => new GenerationRequest(Demo, prompt, tokens, []), failure);

    private static async Task<int[][]> GenerateThroughAsync(MeshClient client, Func<int[], GenerationRequest> request, Func<Task> failure)
    {
        var started = GenerationTests.Prompts.Select(_ => new TaskCompletionSource()).ToArray();
        var runs = GenerationTests.Prompts.Select(async (prompt, i) =>
        {
            var output = new List<int>();
            await foreach (var token in client.GenerateAsync(request(prompt)))
            {
                output.Add(token.Id);
                if (output.Count == 3)
                {
                    started[i].TrySetResult();
                }
            }

            started[i].TrySetResult();
            return output.ToArray();
        }).ToArray();
        await Task.WhenAll(started.Select(s => s.Task));
        await failure();
        return await Task.WhenAll(runs);
    }

    /// <summary>The silo whose scheduler runs the most sequences (the client spreads them over its gateways).</summary>
    private static InProcessSiloHandle RunningSequences(MeshCluster mesh) =>
        mesh.Silos.OrderByDescending(s => MeshCluster.Service<GenerationScheduler>(s).Queued).First();

    [Fact]
    public async Task Killing_a_silo_that_hosts_experts_loses_no_sequence()
    {
        await using var mesh = await MeshCluster.StartAsync(3, DemoModels);
        var client = new MeshClient(MeshCluster.GrainFactory(mesh.Silos[0]));
        await mesh.WaitForSpreadAsync(Demo);
        var victim = mesh.Silos.First(s => s != mesh.Silos[0] && MeshCluster.Service<LocalExperts>(s).Hosted.Count > 0);

        var outputs = await GenerateThroughAsync(client, Tokens, () => mesh.Cluster.KillSiloAsync(victim));

        for (var i = 0; i < outputs.Length; i++)
        {
            Assert.Equal(GenerationTests.Expected(GenerationTests.Prompts[i], Tokens), outputs[i]);
        }

        // The dead silo's experts are active again on the two that remain.
        await mesh.WaitForAllExpertsAsync(Demo);
        Assert.DoesNotContain(mesh.Silos, s => s.SiloAddress.Equals(victim.SiloAddress));
    }

    [Fact]
    public async Task Killing_the_silo_running_the_sequences_resumes_them_elsewhere()
    {
        await using var mesh = await MeshCluster.StartAsync(3, DemoModels);
        var client = new MeshClient(mesh.Client);

        var outputs = await GenerateThroughAsync(client, Tokens, () => mesh.Cluster.KillSiloAsync(RunningSequences(mesh)));

        for (var i = 0; i < outputs.Length; i++)
        {
            Assert.Equal(GenerationTests.Expected(GenerationTests.Prompts[i], Tokens), outputs[i]);
        }

        Assert.True(client.Resubmissions > 0, "the client resubmitted the sequences whose silo died");
    }

    [Fact]
    public async Task A_seeded_sampled_sequence_resumed_after_its_silo_died_is_the_undisturbed_one()
    {
        await using var mesh = await MeshCluster.StartAsync(3, DemoModels);
        var client = new MeshClient(mesh.Client);
        GenerationRequest Sampled(int[] prompt) => new(Demo, prompt, Tokens, [], Temperature: 0.9f, TopP: 0.95f, Seed: 1234);
        var undisturbed = await Task.WhenAll(GenerationTests.Prompts.Select(async p =>
        {
            var output = new List<int>();
            await foreach (var token in client.GenerateAsync(Sampled(p)))
            {
                output.Add(token.Id);
            }

            return output.ToArray();
        }));

        var outputs = await GenerateThroughAsync(client, Sampled, () => mesh.Cluster.KillSiloAsync(RunningSequences(mesh)));

        Assert.True(client.Resubmissions > 0, "the client resubmitted the sequences whose silo died");
        Assert.Equal(undisturbed, outputs);
        Assert.NotEqual(GenerationTests.Expected(GenerationTests.Prompts[0], Tokens), undisturbed[0]); // sampled, not greedy
    }

    [Fact]
    public async Task Stopping_the_silo_running_the_sequences_gracefully_resumes_them_elsewhere()
    {
        await using var mesh = await MeshCluster.StartAsync(3, DemoModels);
        await mesh.WaitForSpreadAsync(Demo);
        var client = new MeshClient(mesh.Client);

        var stopping = Task.CompletedTask;
        var outputs = await GenerateThroughAsync(client, Tokens, () =>
        {
            stopping = mesh.Cluster.StopSiloAsync(RunningSequences(mesh));
            return Task.CompletedTask;
        });
        await stopping;

        for (var i = 0; i < outputs.Length; i++)
        {
            Assert.Equal(GenerationTests.Expected(GenerationTests.Prompts[i], Tokens), outputs[i]);
        }

        Assert.True(client.Resubmissions > 0, "the client resubmitted the sequences whose silo left");
    }

    [Fact]
    public async Task The_plan_survives_the_death_of_its_silo()
    {
        await using var mesh = await MeshCluster.StartAsync(3, DemoModels);
        await mesh.WaitForSpreadAsync(Demo);
        var plan = MeshCluster.GrainFactory(mesh.Silos[0]).GetGrain<Placement.IMeshPlanGrain>(Demo);
        var before = await plan.GetStatusAsync();
        Assert.True(mesh.Cluster.TryGetGrainContext(plan.GetGrainId(), out var context));
        var home = mesh.Silos.Single(s => s.SiloAddress.Equals(context.Address.SiloAddress));
        var survivor = mesh.Silos.First(s => s != home);

        await mesh.Cluster.KillSiloAsync(home);

        var after = await MeshCluster.GrainFactory(survivor).GetGrain<Placement.IMeshPlanGrain>(Demo).GetStatusAsync();
        Assert.Equal(before.Fingerprint, after.Fingerprint);
        Assert.True(after.HistoryRounds >= before.HistoryRounds);
        var client = new MeshClient(MeshCluster.GrainFactory(survivor));
        Assert.Equal(GenerationTests.Expected(GenerationTests.Prompts[5], 12), await mesh.GenerateAsync(Demo, GenerationTests.Prompts[5], 12, client));
        await mesh.WaitForAllExpertsAsync(Demo);
    }

    [Fact]
    public async Task Degraded_mode_skips_experts_that_do_not_answer_in_time()
    {
        void Degraded(MeshOptions o)
        {
            o.Degraded.Enabled = true;
            o.Degraded.Deadline = TimeSpan.FromMilliseconds(100);
            o.Degraded.MinExperts = 1;
        }

        await using var mesh = await MeshCluster.StartAsync(2, DemoModels, Degraded);
        var slow = await mesh.AddSiloAsync(silo: SlowExperts.On);
        await mesh.WaitForSpreadAsync(Demo);
        Assert.NotEmpty(MeshCluster.Service<LocalExperts>(slow).Hosted);

        // The sequences run on a fast silo (a gate runs its own silo's experts in place, not through the data channel).
        var client = new MeshClient(MeshCluster.GrainFactory(mesh.Silos[0]));

        var outputs = await Task.WhenAll(GenerationTests.Prompts.Select(p => mesh.GenerateAsync(Demo, p, 10, client)));

        Assert.All(outputs, o => Assert.Equal(10, o.Length));
        Assert.True(mesh.Silos.Sum(s => MeshCluster.Service<MeshMetrics>(s).SkippedExperts) > 0, "the slow silo's experts were skipped");
    }

    [Fact]
    public async Task Without_degraded_mode_a_slow_expert_is_waited_for()
    {
        await using var mesh = await MeshCluster.StartAsync(2, DemoModels);
        await mesh.AddSiloAsync(silo: SlowExperts.On);
        await mesh.WaitForSpreadAsync(Demo);
        var client = new MeshClient(mesh.Client);

        Assert.Equal(GenerationTests.Expected(GenerationTests.Prompts[4], 3), await mesh.GenerateAsync(Demo, GenerationTests.Prompts[4], 3, client));
        Assert.Equal(0, mesh.Silos.Sum(s => MeshCluster.Service<MeshMetrics>(s).SkippedExperts));
    }
}

/// <summary>A silo whose experts answer the data channel 300 ms late (an overloaded machine).</summary>
public sealed class SlowExperts(LocalExperts experts) : IExpertBatchExecutor
{
    public static void On(ISiloBuilder silo) => silo.Services.AddSingleton<IExpertBatchExecutor>(sp => new SlowExperts(sp.GetRequiredService<LocalExperts>()));

    public async ValueTask<ExpertBatchResult> ExecuteAsync(ExpertBatch batch)
    {
        await Task.Delay(300);
        return await experts.ExecuteAsync(batch);
    }
}
