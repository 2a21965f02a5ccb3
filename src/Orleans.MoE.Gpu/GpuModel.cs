using ILGPU;
using Orleans.MoE.Gpu.Device;
using Orleans.MoE.Gpu.Layers;
using Orleans.MoE.Models;
using Orleans.MoE.Models.Layers;
using Orleans.MoE.Models.Verification;
using Orleans.MoE.Tensors;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Gpu;

/// <summary>
/// A whole decoder-only MoE model resident on a device: built from the CPU engine's model (so the
/// architectures, configs and checkpoints have one reader), weights uploaded once in their stored
/// dtype, and the forward pass as a short sequence of kernel launches: embed; per layer
/// h += attention(norm(h)), h += ffn(norm(h)); final norm; LM head. Forward passes are serialised
/// (one workspace); each sequence's KV cache is a <see cref="GpuSequence"/>.
/// </summary>
public sealed class GpuModel : IReferenceModel, IDisposable
{
    private readonly GpuDevice _device;
    private readonly Workspace _workspace;
    private readonly DeviceMatrix _embedding;
    private readonly DeviceMatrix _lmHead;
    private readonly bool _tied;
    private readonly DeviceNorm _norm;
    private readonly Layer[] _layers;
    private readonly RopeTable[] _ropes;
    private readonly Lock _lock = new();

    private GpuModel(GpuDevice device, DeviceMatrix embedding, DeviceMatrix lmHead, bool tied, DeviceNorm norm, Layer[] layers, RopeTable[] ropes)
    {
        _device = device;
        _workspace = new Workspace(device);
        _embedding = embedding;
        _lmHead = lmHead;
        _tied = tied;
        _norm = norm;
        _layers = layers;
        _ropes = ropes;
    }

    public GpuDevice Device => _device;

    public int HiddenSize => _embedding.Cols;

    public int VocabSize => _lmHead.Rows;

    public int LayerCount => _layers.Length;

    /// <summary>Bytes of weights resident on the device for this model.</summary>
    public long WeightBytes { get; private init; }

    /// <summary>Uploads <paramref name="model"/>'s weights to <paramref name="device"/>; the CPU model may be disposed afterwards.</summary>
    public static GpuModel Upload(GpuDevice device, CausalLanguageModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Upload(device, model.Embedding, model.Layers, model.Norm, model.LmHead);
    }

    /// <summary>Uploads a model given by its parts (as <see cref="CausalLanguageModel"/> holds them), for models built in memory.</summary>
    public static GpuModel Upload(GpuDevice device, WeightMatrix embeddingWeights, IReadOnlyList<DecoderLayer> decoderLayers, RmsNorm finalNorm, WeightMatrix lmHeadWeights)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(decoderLayers);
        ArgumentNullException.ThrowIfNull(finalNorm);
        device.Bind();
        var before = device.Memory.WeightBytes;
        var owned = new List<IDisposable>();
        try
        {
            var embedding = Own(owned, DeviceMatrix.Upload(device, embeddingWeights));
            var tied = lmHeadWeights.Data == embeddingWeights.Data && lmHeadWeights.Rows == embeddingWeights.Rows;
            var lmHead = tied ? embedding : Own(owned, DeviceMatrix.Upload(device, lmHeadWeights));
            var norm = Own(owned, new DeviceNorm(device, finalNorm));
            var ropes = new Dictionary<RotaryEmbedding, RopeTable>(ReferenceEqualityComparer.Instance);
            RopeTable RopeFor(RotaryEmbedding rope)
            {
                if (!ropes.TryGetValue(rope, out var table))
                {
                    ropes[rope] = table = Own(owned, new RopeTable(device, rope));
                }

                return table;
            }

            var layers = decoderLayers.Select((layer, l) => new Layer(
                Own(owned, new DeviceNorm(device, layer.InputNorm)),
                Own<IDeviceAttention>(owned, layer.Attention switch
                {
                    GroupedQueryAttention gqa => new DeviceAttention(device, gqa, RopeFor(gqa.Rope)),
                    MultiHeadLatentAttention mla => new DeviceLatentAttention(device, mla, RopeFor(mla.Rope)),
                    var other => throw new NotSupportedException($"layer {l}: attention {other.GetType().Name} is not supported on the GPU backend"),
                }),
                Own(owned, new DeviceNorm(device, layer.PostAttentionNorm)),
                Own<IDeviceFeedForward>(owned, layer.FeedForward switch
                {
                    SparseMoeBlock block => new DeviceMoeBlock(device, block),
                    SwiGluMlp mlp => new DeviceDenseFeedForward(new DeviceMlp(device, mlp)),
                    var other => throw new NotSupportedException($"layer {l}: feed-forward {other.GetType().Name} is not supported on the GPU backend"),
                }))).ToArray();
            device.Synchronize();
            return new GpuModel(device, embedding, lmHead, tied, norm, layers, [.. ropes.Values])
            {
                WeightBytes = device.Memory.WeightBytes - before,
            };
        }
        catch
        {
            foreach (var item in owned)
            {
                item.Dispose();
            }

            throw;
        }
    }

    /// <summary>An empty sequence (KV cache on the device) with room for <paramref name="capacity"/> positions; it grows.</summary>
    public GpuSequence CreateSequence(int capacity = 256) =>
        new(_device, _layers.Select(l => l.Attention.CacheShape).ToArray(), capacity);

    IDisposable IReferenceModel.CreateSequence(int capacity) => CreateSequence(capacity);

    float[] IReferenceModel.Forward(int[] tokens, IDisposable sequence, bool allLogits, ForwardTrace? trace) =>
        Forward(tokens, (GpuSequence)sequence, allLogits, trace);

    /// <summary>
    /// Runs <paramref name="tokens"/> at the positions after what <paramref name="sequence"/> holds, appending
    /// to it. Returns logits [T, vocab] when <paramref name="allLogits"/>, else [1, vocab] for the last token.
    /// </summary>
    public float[] Forward(ReadOnlySpan<int> tokens, GpuSequence sequence, bool allLogits = false, ForwardTrace? trace = null)
    {
        lock (_lock)
        {
            var rows = allLogits ? tokens.Length : 1;
            var logits = Run(tokens, sequence, rows, trace);
            return logits.SubView(0, (long)rows * VocabSize).ToHost();
        }
    }

    /// <summary>
    /// Runs <paramref name="tokens"/> and chooses the next token on the device (only its id comes back):
    /// greedy when <paramref name="temperature"/> is 0, else a draw from softmax(logits / temperature)
    /// at <paramref name="uniform"/> ∈ [0, 1).
    /// </summary>
    public int NextToken(ReadOnlySpan<int> tokens, GpuSequence sequence, float temperature = 0f, float uniform = 0f)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(temperature);
        lock (_lock)
        {
            var logits = Run(tokens, sequence, 1, trace: null);
            var chosen = _workspace.Ints(1);
            if (temperature == 0f)
            {
                _device.Ops.Argmax(logits, chosen, 1, VocabSize);
            }
            else
            {
                var uniforms = _workspace.Floats(1);
                ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(uniforms, [uniform]);
                _device.Ops.Sample(logits, uniforms, chosen, 1, VocabSize, temperature);
            }

            return chosen.ToHost()[0];
        }
    }

    /// <summary>The forward pass up to the last <paramref name="rows"/> rows of logits, left on the device.</summary>
    private ArrayView<float> Run(ReadOnlySpan<int> tokens, GpuSequence sequence, int rows, ForwardTrace? trace)
    {
        ArgumentNullException.ThrowIfNull(sequence);
        var count = tokens.Length;
        if (count == 0)
        {
            throw new ArgumentException("no tokens to run", nameof(tokens));
        }

        foreach (var id in tokens)
        {
            if ((uint)id >= (uint)_embedding.Rows)
            {
                throw new ArgumentOutOfRangeException(nameof(tokens), $"token id {id} outside the vocabulary [0, {_embedding.Rows})");
            }
        }

        _device.Bind();
        _workspace.Reset();
        var start = sequence.Length;
        sequence.EnsureCapacity(start + count);
        foreach (var rope in _ropes)
        {
            rope.EnsurePositions(start + count);
        }

        var ops = _device.Ops;
        var step = new DeviceStep(ops, _workspace, count, start);
        var width = HiddenSize;

        // hidden [T, H] = embeddings of the tokens
        var ids = _workspace.Ints(count);
        ILGPU.Runtime.ArrayViewExtensions.CopyFromCPU(ids, _device.Accelerator.DefaultStream, tokens);
        var hidden = _workspace.Floats((long)count * width);
        ops.Embedding(_embedding.View, ids, count, hidden);
        trace?.HiddenStates.Add(hidden.ToHost());
        var normed = _workspace.Floats((long)count * width);

        for (var l = 0; l < _layers.Length; l++)
        {
            var layer = _layers[l];
            var mark = _workspace.Mark();
            layer.InputNorm.Forward(ops, hidden, normed, count);
            layer.Attention.Forward(step, normed, sequence.Keys(l), sequence.Values(l), hidden);
            layer.PostAttentionNorm.Forward(ops, hidden, normed, count);
            layer.FeedForward.Forward(step, normed, hidden, trace);
            _workspace.Release(mark);
            trace?.HiddenStates.Add(hidden.ToHost());
        }

        sequence.Length = start + count;

        // the final norm, then logits [rows, vocab] of the last rows
        _norm.Forward(ops, hidden, hidden, count);
        if (trace is not null)
        {
            trace.HiddenStates[^1] = hidden.ToHost();
        }

        var logits = _workspace.Floats((long)rows * VocabSize);
        ops.Linear(_lmHead.View, hidden.SubView((long)(count - rows) * width, (long)rows * width), rows, logits, _workspace);
        return logits;
    }

    public void Dispose()
    {
        _device.Bind();
        _device.Synchronize();
        foreach (var layer in _layers)
        {
            layer.InputNorm.Dispose();
            layer.Attention.Dispose();
            layer.PostAttentionNorm.Dispose();
            layer.FeedForward.Dispose();
        }

        foreach (var rope in _ropes)
        {
            rope.Dispose();
        }

        _norm.Dispose();
        if (!_tied)
        {
            _lmHead.Dispose();
        }

        _embedding.Dispose();
        _workspace.Dispose();
    }

    private static T Own<T>(List<IDisposable> owned, T item)
        where T : IDisposable
    {
        owned.Add(item);
        return item;
    }

    private sealed record Layer(DeviceNorm InputNorm, IDeviceAttention Attention, DeviceNorm PostAttentionNorm, IDeviceFeedForward FeedForward);
}
