using System.Security.Cryptography;
using System.Text;

namespace Orleans.MoE.Runtime.Storage;

/// <summary>
/// Grain state in files under a directory: one file per (state, grain) holding the ETag and the data,
/// replaced atomically (write to a temporary file, then rename), so a crash mid-write leaves the old state.
/// Writers hold an exclusive lock on a per-state lock file while they check the ETag and replace the file,
/// so several silos (or processes) sharing the directory cannot both win a race.
/// </summary>
public sealed class DiskGrainStorage(string directory) : IGrainStorage
{
    public async Task<(byte[]? Data, string? ETag)> ReadAsync(string stateName, GrainId grain, CancellationToken cancellationToken)
    {
        var path = PathOf(stateName, grain);
        if (!File.Exists(path))
        {
            return (null, null);
        }

        byte[] bytes;
        try
        {
            bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        }
        catch (FileNotFoundException)
        {
            return (null, null);
        }

        var etagLength = bytes.Length >= 4 ? BitConverter.ToInt32(bytes, 0) : -1;
        if (etagLength < 0 || etagLength > bytes.Length - 4)
        {
            throw new InvalidDataException($"{path}: corrupt state file");
        }

        return (bytes[(4 + etagLength)..], Encoding.UTF8.GetString(bytes, 4, etagLength));
    }

    public async Task<string> WriteAsync(string stateName, GrainId grain, byte[] data, string? expectedETag, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(data);
        var path = PathOf(stateName, grain);
        System.IO.Directory.CreateDirectory(directory);
        await using var held = (await LockAsync(path, cancellationToken).ConfigureAwait(false)).ConfigureAwait(false);
        await CheckAsync(stateName, grain, expectedETag, cancellationToken).ConfigureAwait(false);
        var etag = Guid.NewGuid().ToString("N");
        var etagBytes = Encoding.UTF8.GetBytes(etag);
        var temporary = $"{path}.{etag}.tmp";
        await File.WriteAllBytesAsync(temporary, [.. BitConverter.GetBytes(etagBytes.Length), .. etagBytes, .. data], cancellationToken).ConfigureAwait(false);
        File.Move(temporary, path, overwrite: true);
        return etag;
    }

    public async Task ClearAsync(string stateName, GrainId grain, string? expectedETag, CancellationToken cancellationToken)
    {
        var path = PathOf(stateName, grain);
        System.IO.Directory.CreateDirectory(directory);
        await using var held = (await LockAsync(path, cancellationToken).ConfigureAwait(false)).ConfigureAwait(false);
        await CheckAsync(stateName, grain, expectedETag, cancellationToken).ConfigureAwait(false);
        File.Delete(path);
    }

    /// <summary>
    /// An exclusive lock on the state's lock file (FileShare.None: an advisory lock on Unix, honoured by
    /// every .NET process). The lock file stays: deleting it would let two writers lock different files.
    /// </summary>
    private static async Task<FileStream> LockAsync(string path, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return new FileStream(path + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 1);
            }
            catch (IOException) when (attempt < 2000)
            {
                await Task.Delay(Math.Min(20, 1 + attempt), cancellationToken).ConfigureAwait(false);
            }
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

    private string PathOf(string stateName, GrainId grain) =>
        Path.Combine(directory, Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes($"{stateName}\n{grain}")))[..40] + ".state");
}
