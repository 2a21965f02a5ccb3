using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.MoE.Models;
using Orleans.MoE.Models.Checkpoints;
using Orleans.MoE.Models.Layers;

namespace Orleans.MoE.Grains.Catalog;

/// <summary>A model as this silo holds it: the network (weights memory-mapped, read on use), its tokenizer when it has one, and a fingerprint of its files.</summary>
public sealed class MeshModel : IDisposable
{
    internal MeshModel(string name, LanguageModel? language, CausalLanguageModel network, string fingerprint)
    {
        Name = name;
        Language = language;
        Network = network;
        Fingerprint = fingerprint;
    }

    public string Name { get; }

    /// <summary>Tokenizer and generation defaults; null for a checkpoint without tokenizer.json (token ids only).</summary>
    public LanguageModel? Language { get; }

    public CausalLanguageModel Network { get; }

    /// <summary>SHA-256 over config.json and the safetensors headers (shapes, dtypes, offsets) with the first bytes of each file's data.</summary>
    public string Fingerprint { get; }

    /// <summary>The sparse MoE block of <paramref name="layer"/>, or an error naming the layer.</summary>
    public SparseMoeBlock MoeBlock(int layer) =>
        layer >= 0 && layer < Network.Layers.Count && Network.Layers[layer].FeedForward is SparseMoeBlock block
            ? block
            : throw new ArgumentOutOfRangeException(nameof(layer), layer, $"model '{Name}' has no MoE block in layer {layer}");

    /// <summary>Layers whose feed-forward is a sparse MoE block.</summary>
    public IEnumerable<int> MoeLayers => Enumerable.Range(0, Network.Layers.Count).Where(l => Network.Layers[l].FeedForward is SparseMoeBlock);

    public void Dispose()
    {
        if (Language is not null)
        {
            Language.Dispose();
        }
        else
        {
            Network.Dispose();
        }
    }
}

/// <summary>
/// The models this silo serves (configuration "Mesh:Models"), loaded at silo start. A model whose files
/// fail to load is recorded with the reason instead: the silo stays in the mesh and serves its other
/// models, and placement never puts that model's experts here. The memory mappings live as long as the
/// silo's services can reach them (the process, in a deployment): kernels that still run on a stopping
/// silo's experts must never find their weights unmapped under them.
/// </summary>
public sealed partial class MeshModels(IOptions<MeshOptions> options, ILogger<MeshModels> logger)
{
    private readonly ConcurrentDictionary<string, MeshModel> _loaded = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _errors = new(StringComparer.Ordinal);

    /// <summary>Models that loaded.</summary>
    public IReadOnlyDictionary<string, MeshModel> Loaded => _loaded;

    /// <summary>Models that failed to load, with the reason.</summary>
    public IReadOnlyDictionary<string, string> Errors => _errors;

    /// <summary>Loads every configured model; failures are logged and recorded, never thrown.</summary>
    public void LoadAll()
    {
        foreach (var (name, directory) in options.Value.Models)
        {
            if (_loaded.ContainsKey(name) || _errors.ContainsKey(name))
            {
                continue;
            }

            try
            {
                ValidateName(name);
                _loaded[name] = Load(name, directory);
                LogLoaded(logger, name, directory);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or CheckpointException or Orleans.MoE.Models.Configuration.ModelConfigException
                or Orleans.MoE.Text.Tokenization.TokenizerFormatException or System.Text.Json.JsonException or ArgumentException or InvalidOperationException)
            {
                _errors[name] = e.Message;
                LogFailed(logger, name, directory, e.Message);
            }
        }
    }

    /// <summary>Marks a loaded model unusable here (its files differ from the mesh's); placement stops choosing this silo for it.</summary>
    public void Reject(string name, string reason)
    {
        if (_loaded.TryRemove(name, out var model))
        {
            model.Dispose();
        }

        _errors[name] = reason;
        LogFailed(logger, name, options.Value.Models.GetValueOrDefault(name) ?? "", reason);
    }

    /// <summary>The model, or a clear error: unknown here, or failed to load here.</summary>
    public MeshModel Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (_loaded.TryGetValue(name, out var model))
        {
            return model;
        }

        if (_errors.TryGetValue(name, out var error))
        {
            throw new ModelUnavailableException($"model '{name}' cannot be served by this silo: {error}");
        }

        throw new UnknownModelException(name, options.Value.Models.Keys);
    }

    /// <summary>Model names go into grain keys and metadata keys: letters, digits, '-', '_', '.'.</summary>
    internal static void ValidateName(string name)
    {
        if (name.Length == 0 || name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
        {
            throw new ArgumentException($"model name '{name}' may only contain ASCII letters, digits, '-', '_' and '.'", nameof(name));
        }
    }

    private static MeshModel Load(string name, string directory)
    {
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"{directory}: the model directory does not exist");
        }

        var fingerprint = Fingerprint(directory);
        if (File.Exists(Path.Combine(directory, "tokenizer.json")))
        {
            var language = LanguageModel.Load(directory);
            return new MeshModel(name, language, language.Network, fingerprint);
        }

        return new MeshModel(name, null, ModelLoader.Load(directory), fingerprint);
    }

    /// <summary>
    /// Identifies a checkpoint's content without reading all of it: config.json, then for each
    /// safetensors file its name, length, header, and first 64 KiB of data.
    /// </summary>
    internal static string Fingerprint(string directory)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(File.ReadAllBytes(Path.Combine(directory, "config.json")));
        foreach (var file in Directory.GetFiles(directory, "*.safetensors").Where(f => Path.GetFileName(f) != "reference.safetensors").Order(StringComparer.Ordinal))
        {
            using var stream = File.OpenRead(file);
            hash.AppendData(System.Text.Encoding.UTF8.GetBytes($"{Path.GetFileName(file)}:{stream.Length}"));
            var buffer = new byte[8];
            stream.ReadAtLeast(buffer, 8, throwOnEndOfStream: false);
            var headerLength = BitConverter.ToInt64(buffer);
            var sample = (int)Math.Clamp(8 + headerLength + 65536, 8, Math.Min(stream.Length, 64L << 20));
            var bytes = new byte[sample];
            stream.Position = 0;
            var read = stream.ReadAtLeast(bytes, sample, throwOnEndOfStream: false);
            hash.AppendData(bytes, 0, read);
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset())[..16];
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Model {Model} loaded from {Directory}")]
    private static partial void LogLoaded(ILogger logger, string model, string directory);

    [LoggerMessage(Level = LogLevel.Error, Message = "Model {Model} ({Directory}) cannot be served by this silo: {Reason}")]
    private static partial void LogFailed(ILogger logger, string model, string directory, string reason);
}
