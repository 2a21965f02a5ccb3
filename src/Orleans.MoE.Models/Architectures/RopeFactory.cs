using Orleans.MoE.Models.Configuration;
using Orleans.MoE.Tensors.Cpu;

namespace Orleans.MoE.Models.Architectures;

/// <summary>
/// Rotary embeddings from a config's rope parameters, as the reference's rope init functions compute
/// them: "default", "linear" (frequencies divided by factor) and "yarn" (NTK-by-parts interpolation with
/// an attention factor on cos/sin). Other types are refused with a clear error.
/// </summary>
internal static class RopeFactory
{
    public static RotaryEmbedding Create(ModelConfig config, int dimension, RopeLayout layout)
    {
        var rope = config.Rope;
        var frequencies = RotaryEmbedding.DefaultInverseFrequencies(dimension, rope.Theta);
        switch (rope.Type)
        {
            case "default":
                return new RotaryEmbedding(frequencies, layout);
            case "linear":
                var factor = (float)Factor(config, rope);
                return new RotaryEmbedding(frequencies.Select(f => f / factor).ToArray(), layout);
            case "yarn":
                return Yarn(config, rope, dimension, layout);
            default:
                throw new ModelConfigException($"{config.Source}: rope type '{rope.Type}' is not supported (supported: default, linear, yarn)");
        }
    }

    /// <summary>YaRN's mscale: 0.1 · m · ln(s) + 1 for s &gt; 1.</summary>
    public static double YarnMscale(double scale, double mscale = 1) => scale <= 1 ? 1.0 : (0.1 * mscale * Math.Log(scale)) + 1.0;

    private static double Factor(ModelConfig config, RopeParameters rope) =>
        rope.Get("factor") ?? throw new ModelConfigException($"{config.Source}: rope type '{rope.Type}' needs a 'factor'");

    private static RotaryEmbedding Yarn(ModelConfig config, RopeParameters rope, int dimension, RopeLayout layout)
    {
        var factor = Factor(config, rope);
        var originalMax = rope.Get("original_max_position_embeddings") ?? config.MaxPositionEmbeddings;
        var attentionFactor = rope.Get("attention_factor")
            ?? (rope.Get("mscale") is { } m && rope.Get("mscale_all_dim") is { } mAll && m != 0 && mAll != 0
                ? YarnMscale(factor, m) / YarnMscale(factor, mAll)
                : YarnMscale(factor));
        var betaFast = rope.Get("beta_fast") ?? 32;
        var betaSlow = rope.Get("beta_slow") ?? 1;
        var truncate = (rope.Get("truncate") ?? 1) != 0;

        double CorrectionDim(double rotations) =>
            dimension * Math.Log(originalMax / (rotations * 2 * Math.PI)) / (2 * Math.Log(rope.Theta));
        var low = CorrectionDim(betaFast);
        var high = CorrectionDim(betaSlow);
        if (truncate)
        {
            low = Math.Floor(low);
            high = Math.Ceiling(high);
        }

        low = Math.Max(low, 0);
        high = Math.Min(high, dimension - 1);
        if (low == high)
        {
            high += 0.001;
        }

        var half = dimension / 2;
        var frequencies = new float[half];
        for (var i = 0; i < half; i++)
        {
            var position = (float)Math.Pow(rope.Theta, (float)(2 * i) / dimension);
            var extrapolation = 1f / position;
            var interpolation = 1f / ((float)factor * position);
            var ramp = Math.Clamp((float)((i - low) / (high - low)), 0f, 1f);
            var extrapolationWeight = 1f - ramp;
            frequencies[i] = (interpolation * (1 - extrapolationWeight)) + (extrapolation * extrapolationWeight);
        }

        return new RotaryEmbedding(frequencies, layout, (float)attentionFactor);
    }
}
