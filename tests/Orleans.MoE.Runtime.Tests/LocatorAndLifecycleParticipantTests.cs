using Microsoft.Extensions.DependencyInjection;
using Orleans.MoE.Runtime.Hosting;
using Orleans.MoE.Runtime.Testing;
using Orleans.MoE.Runtime.Tests.Grains;

namespace Orleans.MoE.Runtime.Tests;

/// <summary>The grain locator (where activations live, as the directory says) and silo lifecycle participants.</summary>
public sealed class LocatorAndLifecycleParticipantTests
{
    [Fact]
    public async Task The_locator_finds_an_activation_caches_it_and_forgets_it_when_told()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        var grain = cluster.Silos[0].GrainFactory.GetGrain<ICounterGrain>("located");
        var id = ((GrainReference)(object)grain).GrainId;
        var locator = cluster.Silos[1].Services.GetRequiredService<IGrainLocator>();

        Assert.Null(await locator.LookupAsync(id));
        await grain.Add(1);
        var home = cluster.Silos.Single(s => s.ActiveGrains.Contains(id)).Address;

        Assert.Equal(home, await locator.LookupAsync(id));
        Assert.Equal(home, locator.CachedLocation(id));
        locator.Invalidate(id);
        Assert.Null(locator.CachedLocation(id));
    }

    [Fact]
    public async Task Participants_start_after_the_join_and_hand_over_while_the_silo_still_serves()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        var participant = new RecordingParticipant();
        var silo = await cluster.StartAdditionalSiloAsync(s => s.Services.AddSingleton<ISiloLifecycleParticipant>(sp => participant.For(sp.GetRequiredService<Silo>())));

        Assert.True(participant.SawItselfActive, "started after the silo joined");
        Assert.False(participant.Stopping.IsCancellationRequested);

        await cluster.StopSiloAsync(silo);

        Assert.True(participant.CalledWhileStopping, "OnSiloStoppingAsync ran");
        Assert.True(participant.CounterAnsweredWhileStopping, "the silo still served calls during the hand-over");
        Assert.True(participant.Stopping.IsCancellationRequested, "the started token fires when the silo stops");
    }

    private sealed class RecordingParticipant : ISiloLifecycleParticipant
    {
        private Silo? _silo;

        public CancellationToken Stopping { get; private set; }

        public bool SawItselfActive { get; private set; }

        public bool CalledWhileStopping { get; private set; }

        public bool CounterAnsweredWhileStopping { get; private set; }

        public RecordingParticipant For(Silo silo)
        {
            _silo = silo;
            return this;
        }

        public Task OnSiloStartedAsync(CancellationToken siloStopping)
        {
            Stopping = siloStopping;
            SawItselfActive = _silo!.ActiveSilos.Contains(_silo.Address);
            return Task.CompletedTask;
        }

        public async Task OnSiloStoppingAsync(CancellationToken cancellationToken)
        {
            CalledWhileStopping = true;
            CounterAnsweredWhileStopping = _silo is not null && await _silo.GrainFactory.GetGrain<ICounterGrain>("while-stopping").Add(1) == 1;
        }
    }
}
