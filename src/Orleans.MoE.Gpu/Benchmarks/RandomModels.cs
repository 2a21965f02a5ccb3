using System.Runtime.InteropServices;
using Orleans.MoE.Models.Layers;
using Orleans.MoE.Tensors;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Gpu.Benchmarks;

/// <summary>
/// Random-weight bf16 models built in host memory for benchmarks: every matrix is a view into one pool
/// of random bf16 values (uploading copies each into its own device memory), so host memory stays small
/// whatever the model's size.
/// </summary>
public sealed unsafe class RandomModels : IDisposable
{
    private readonly nint _pool;
    private readonly long _elements;
    private long _next;

    public RandomModels(long elements = 1L << 28, int seed = 1)
    {
        _elements = elements;
        _pool = (nint)NativeMemory.Alloc((nuint)(elements * 2));
        var span = new Span<ushort>((void*)_pool, checked((int)Math.Min(elements, int.MaxValue)));
        var chunks = Environment.ProcessorCount;
        var length = span.Length;
        Parallel.For(0, chunks, c =>
        {
            var state = (uint)(seed * 7919 + c * 104729 + 1);
            var pool = new Span<ushort>((void*)_pool, length);
            for (var i = c; i < length; i += chunks)
            {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                var uniform = ((state >> 8) / (float)(1 << 24)) - 0.5f;
                pool[i] = DTypeConvert.SingleToBFloat16(uniform * 0.04f);
            }
        });
    }

    public WeightMatrix Matrix(int rows, int cols)
    {
        var count = (long)rows * cols;
        if (count > _elements)
        {
            throw new ArgumentException($"a {rows}x{cols} matrix is larger than the random pool");
        }

        if (_next + count > _elements)
        {
            _next = 0;
        }

        var matrix = new WeightMatrix(_pool + (nint)(_next * 2), rows, cols, DType.BF16);
        _next += (count + 4095) / 4096 * 4096;
        return matrix;
    }

    public static RmsNorm Norm(int width) => new(Enumerable.Repeat(1f, width).ToArray(), 1e-5f);

    public Linear Linear(int outFeatures, int inFeatures) => new(Matrix(outFeatures, inFeatures));

    public SparseMoeBlock MoeBlock(ModelShape s) => new(
        Linear(s.Experts, s.Hidden),
        Routing.SoftmaxTopK(normalize: true),
        s.TopK,
        Enumerable.Range(0, s.Experts).Select(_ => new SwiGluMlp(Linear(s.Intermediate, s.Hidden), Linear(s.Intermediate, s.Hidden), Linear(s.Hidden, s.Intermediate))).ToArray());

    public DecoderLayer Layer(ModelShape s)
    {
        var rope = new RotaryEmbedding(RotaryEmbedding.DefaultInverseFrequencies(s.HeadDim, 1e6), RopeLayout.Half);
        var attention = new GroupedQueryAttention(
            Linear(s.Heads * s.HeadDim, s.Hidden), Linear(s.KvHeads * s.HeadDim, s.Hidden), Linear(s.KvHeads * s.HeadDim, s.Hidden),
            Linear(s.Hidden, s.Heads * s.HeadDim), s.Heads, s.KvHeads, s.HeadDim, rope);
        return new DecoderLayer(Norm(s.Hidden), attention, Norm(s.Hidden), MoeBlock(s));
    }

    /// <summary>Uploads a whole random model of the shape to the device.</summary>
    public GpuModel Model(Device.GpuDevice device, ModelShape s, int? layers = null)
    {
        var decoderLayers = Enumerable.Range(0, layers ?? s.Layers).Select(_ => Layer(s)).ToArray();
        return GpuModel.Upload(device, Matrix(s.Vocab, s.Hidden), decoderLayers, Norm(s.Hidden), Matrix(s.Vocab, s.Hidden));
    }

    public void Dispose() => NativeMemory.Free((void*)_pool);
}
