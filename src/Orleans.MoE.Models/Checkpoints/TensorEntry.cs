using Orleans.MoE.Tensors;

namespace Orleans.MoE.Models.Checkpoints;

/// <summary>One tensor of a safetensors file: its dtype, shape and where its bytes lie in the mapped file.</summary>
public sealed record TensorEntry(string Name, DType DType, long[] Shape, long Offset, long ByteLength, string File)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
