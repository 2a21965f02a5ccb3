using System.Security.Cryptography;
using System.Text;

namespace Orleans.MoE.Runtime.Storage;

/// <summary>
/// Grain state in files under a directory: one file per (state, grain) holding the ETag and the data,
/// replaced atomically (write to a temporary file, then rename), so a crash mid-write leaves the old state.
/// </summary>
public sealed class DiskGrainStorage(string directory) : IGrainStorage, IDisposable
{
    private readonly SemaphoreSlim _lock = new(1, 1);

    public async Task<(byte[]? Data, string? ETag)> ReadAsync(string stateName, GrainId grain, CancellationToken cancellationToken)
    {
        var path = PathOf(stateName, grain);
        if (!File.Exists(path))
        {
            return (null, null);
        }

        var bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        var etagLength = bytes.Length >= 4 ? BitConverter.ToInt32(bytes, 0) : -1;
        if (etagLength < 0 || etagLength > bytes.Length - 4)
        {
            throw new InvalidDataException($"{path}: corrupt state file");
        }

        return (bytes[(4 + etagLength)..], Encoding.UTF8.GetString(bytes, 4, etagLength));
    }

    public async Task<string> WriteAsync(string stateName, GrainId grain, byte[] data, string? expectedETag, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await CheckAsync(stateName, grain, expectedETag, cancellationToken).ConfigureAwait(false);
            var etag = Guid.NewGuid().ToString("N");
            var etagBytes = Encoding.UTF8.GetBytes(etag);
            var path = PathOf(stateName, grain);
            System.IO.Directory.CreateDirectory(directory);
            var temporary = path + ".tmp";
            await File.WriteAllBytesAsync(temporary, [.. BitConverter.GetBytes(etagBytes.Length), .. etagBytes, .. data], cancellationToken).ConfigureAwait(false);
            File.Move(temporary, path, overwrite: true);
            return etag;
        }
        finally
        {
            _lock.Release();
        }
    }

    public async Task ClearAsync(string stateName, GrainId grain, string? expectedETag, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await CheckAsync(stateName, grain, expectedETag, cancellationToken).ConfigureAwait(false);
            File.Delete(PathOf(stateName, grain));
        }
        finally
        {
            _lock.Release();
        }
    }

    private async Task CheckAsync(string stateName, GrainId grain, string? expectedETag, CancellationToken cancellationToken)
    {
        var (_, current) = await ReadAsync(stateName, grain, cancellationToken).ConfigureAwait(false);
        if (current != expectedETag)
        {
            throw new InconsistentStateException($"state '{stateName}' of {grain}: ETag {expectedETag ?? "(none)"} is stale, the stored one is {current ?? "(none)"}");
        }
    }

    public void Dispose() => _lock.Dispose();

    private string PathOf(string stateName, GrainId grain) =>
        Path.Combine(directory, Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes($"{stateName}\n{grain}")))[..40] + ".state");
}
