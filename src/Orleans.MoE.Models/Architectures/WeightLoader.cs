using Orleans.MoE.Models.Checkpoints;
using Orleans.MoE.Models.Configuration;
using Orleans.MoE.Models.Layers;
using Orleans.MoE.Tensors;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Architectures;

/// <summary>Reads the building blocks every architecture shares from a checkpoint, checking shapes against the config.</summary>
internal sealed class WeightLoader(ModelConfig config, Checkpoint checkpoint)
{
    public ModelConfig Config => config;

    public Checkpoint Checkpoint => checkpoint;

    public int Hidden => config.HiddenSize;

    /// <summary>A linear layer <c>{name}.weight</c> [out, in], with <c>{name}.bias</c> when the checkpoint has one.</summary>
    public Linear Linear(string name, int outFeatures, int inFeatures) =>
        new(checkpoint.Matrix(name + ".weight", outFeatures, inFeatures),
            checkpoint.Contains(name + ".bias") ? checkpoint.Vector(name + ".bias", outFeatures) : null,
            name + ".weight");

    public RmsNorm Norm(string name, int width) => new(checkpoint.Vector(name + ".weight", width), config.RmsNormEps);

    /// <summary>A SwiGLU MLP under <paramref name="prefix"/> with the given projection names (gate, up, down).</summary>
    public SwiGluMlp Mlp(string prefix, int intermediate, string gate = "gate_proj", string up = "up_proj", string down = "down_proj") =>
        new(Linear($"{prefix}.{gate}", intermediate, Hidden),
            Linear($"{prefix}.{up}", intermediate, Hidden),
            Linear($"{prefix}.{down}", Hidden, intermediate));

    public WeightMatrix Embedding() => checkpoint.Matrix("model.embed_tokens.weight", config.VocabSize, Hidden);

    /// <summary>lm_head, or the embedding when tie_word_embeddings (or when lm_head is absent and tying is not ruled out).</summary>
    public WeightMatrix LmHead() =>
        config.TieWordEmbeddings || !checkpoint.Contains("lm_head.weight")
            ? (config.Has("tie_word_embeddings") && !config.TieWordEmbeddings
                ? throw new CheckpointException($"{checkpoint.Location}: tensor 'lm_head.weight' not found and tie_word_embeddings is false")
                : Embedding())
            : checkpoint.Matrix("lm_head.weight", config.VocabSize, Hidden);

    /// <summary>RoPE for heads with <paramref name="dimension"/> rotary dims, from the config's rope parameters.</summary>
    public RotaryEmbedding Rope(int dimension, RopeLayout layout) => RopeFactory.Create(config, dimension, layout);

    /// <summary>
    /// The standard attention of layer <paramref name="layer"/>: q/k/v/o projections (biased when the
    /// checkpoint has biases), optional q/k RMSNorm (q_norm/k_norm of the width the kind implies),
    /// clipping and sliding window.
    /// </summary>
    public GroupedQueryAttention Attention(int layer, RotaryEmbedding rope, QueryKeyNorm norm = QueryKeyNorm.None, float? clip = null, int? slidingWindow = null)
    {
        var p = $"model.layers.{layer}.self_attn";
        var (heads, kvHeads, headDim) = (config.NumAttentionHeads, config.NumKeyValueHeads, config.HeadDim);
        var (qNorm, kNorm) = norm switch
        {
            QueryKeyNorm.PerHead => (Norm($"{p}.q_norm", headDim), Norm($"{p}.k_norm", headDim)),
            QueryKeyNorm.WholeProjection => (Norm($"{p}.q_norm", heads * headDim), Norm($"{p}.k_norm", kvHeads * headDim)),
            _ => ((RmsNorm?)null, (RmsNorm?)null),
        };
        return new GroupedQueryAttention(
            Linear($"{p}.q_proj", heads * headDim, Hidden),
            Linear($"{p}.k_proj", kvHeads * headDim, Hidden),
            Linear($"{p}.v_proj", kvHeads * headDim, Hidden),
            Linear($"{p}.o_proj", Hidden, heads * headDim),
            heads, kvHeads, headDim, rope, norm, qNorm, kNorm, clip, slidingWindow);
    }

    /// <summary>A pre-norm decoder layer with the usual input_layernorm and post_attention_layernorm.</summary>
    public DecoderLayer Layer(int layer, IAttention attention, IFeedForward feedForward) =>
        new(Norm($"model.layers.{layer}.input_layernorm", Hidden), attention, Norm($"model.layers.{layer}.post_attention_layernorm", Hidden), feedForward);

    public CausalLanguageModel Model(IReadOnlyList<DecoderLayer> layers) =>
        new(config, checkpoint, Embedding(), layers, Norm("model.norm", Hidden), LmHead());

    /// <summary>Layer indices 0..L-1.</summary>
    public IEnumerable<int> LayerIndices => Enumerable.Range(0, config.NumLayers);
}
