using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Orleans.MoE.Grains;
using Orleans.Storage;

namespace Orleans.MoE.Testing;

/// <summary>
/// Grain storage that outlives the clusters using it (one instance given to every silo of two clusters
/// started one after the other: a whole-cluster restart), keeping each state as JSON with an ETag that
/// changes on every write, as a durable store would. Stale writes fail as Orleans' storage providers do.
/// </summary>
public sealed class SharedGrainStorage : IGrainStorage
{
    private readonly ConcurrentDictionary<string, (string Json, string ETag)> _states = new();
    private long _version;

    /// <summary>Registers this storage as the mesh's (<see cref="MeshStorage.Name"/>) on <paramref name="silo"/>.</summary>
    public void AddTo(ISiloBuilder silo)
    {
        ArgumentNullException.ThrowIfNull(silo);
        silo.Services.AddKeyedSingleton<IGrainStorage>(MeshStorage.Name, this);
    }

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        ArgumentNullException.ThrowIfNull(grainState);
        if (_states.TryGetValue(Key(stateName, grainId), out var stored))
        {
            grainState.State = JsonSerializer.Deserialize<T>(stored.Json)!;
            grainState.ETag = stored.ETag;
            grainState.RecordExists = true;
        }

        return Task.CompletedTask;
    }

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        ArgumentNullException.ThrowIfNull(grainState);
        var key = Key(stateName, grainId);
        var etag = Interlocked.Increment(ref _version).ToString(CultureInfo.InvariantCulture);
        var json = JsonSerializer.Serialize(grainState.State);
        lock (_states)
        {
            var current = _states.TryGetValue(key, out var stored) ? stored.ETag : null;
            if (current != grainState.ETag)
            {
                throw new InconsistentStateException($"{key}: stale write (ETag {grainState.ETag ?? "none"}, stored {current ?? "none"})", current, grainState.ETag);
            }

            _states[key] = (json, etag);
        }

        grainState.ETag = etag;
        grainState.RecordExists = true;
        return Task.CompletedTask;
    }

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        ArgumentNullException.ThrowIfNull(grainState);
        _states.TryRemove(Key(stateName, grainId), out _);
        grainState.ETag = null;
        grainState.RecordExists = false;
        return Task.CompletedTask;
    }

    private static string Key(string stateName, GrainId grainId) => $"{stateName}/{grainId}";
}
