using Orleans.MoE.Grains.Experts;
using Orleans.MoE.Grains.Gates;
using Orleans.MoE.Grains.Models;
using Orleans.MoE.Runtime;

namespace Orleans.MoE.Grains.Generation;

/// <summary>
/// The mesh's own errors, which cross grain calls as <see cref="RemoteGrainException"/>s, given back
/// their types so callers can tell "busy" from "unknown model" from "the context is too short".
/// </summary>
public static class MeshErrors
{
    public static Exception Typed(RemoteGrainException error)
    {
        ArgumentNullException.ThrowIfNull(error);
        var prefix = error.TypeName + ": ";
        var message = error.Message.StartsWith(prefix, StringComparison.Ordinal) ? error.Message[prefix.Length..] : error.Message;
        return error.TypeName switch
        {
            var t when t == typeof(MeshBusyException).FullName => new MeshBusyException(message, error),
            var t when t == typeof(ContextLengthExceededException).FullName => new ContextLengthExceededException(message, error),
            var t when t == typeof(UnknownModelException).FullName => new UnknownModelException(message, error),
            var t when t == typeof(ModelUnavailableException).FullName => new ModelUnavailableException(message, error),
            var t when t == typeof(SequenceLostException).FullName => new SequenceLostException(message, error),
            var t when t == typeof(MeshStepException).FullName => new MeshStepException(message, error),
            var t when t == typeof(ExpertCapacityException).FullName => new ExpertCapacityException(message, error),
            _ => error,
        };
    }
}
