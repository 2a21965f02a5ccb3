namespace Orleans.MoE.Runtime.Serialization;

/// <summary>Element type of a <see cref="TensorPayload"/> (the runtime does not depend on the tensor library).</summary>
public enum TensorElementType : byte
{
    F32,
    BF16,
    F16,
    I64,
}
