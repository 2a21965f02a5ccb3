namespace Orleans.MoE.Runtime.Storage;

/// <summary>Grain state in this process's memory (the embedded default; gone with the process).</summary>
public sealed class MemoryGrainStorage : IGrainStorage
{
    private readonly object _lock = new();
    private readonly Dictionary<(string, GrainId), (byte[] Data, string ETag)> _entries = [];
    private long _version;

    public Task<(byte[]? Data, string? ETag)> ReadAsync(string stateName, GrainId grain, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult<(byte[]?, string?)>(_entries.TryGetValue((stateName, grain), out var e) ? (e.Data, e.ETag) : (null, null));
        }
    }

    public Task<string> WriteAsync(string stateName, GrainId grain, byte[] data, string? expectedETag, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            Check(stateName, grain, expectedETag);
            var etag = (++_version).ToString(System.Globalization.CultureInfo.InvariantCulture);
            _entries[(stateName, grain)] = (data, etag);
            return Task.FromResult(etag);
        }
    }

    public Task ClearAsync(string stateName, GrainId grain, string? expectedETag, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            Check(stateName, grain, expectedETag);
            _entries.Remove((stateName, grain));
            return Task.CompletedTask;
        }
    }

    private void Check(string stateName, GrainId grain, string? expectedETag)
    {
        var current = _entries.TryGetValue((stateName, grain), out var e) ? e.ETag : null;
        if (current != expectedETag)
        {
            throw new InconsistentStateException($"state '{stateName}' of {grain}: ETag {expectedETag ?? "(none)"} is stale, the stored one is {current ?? "(none)"}");
        }
    }
}
