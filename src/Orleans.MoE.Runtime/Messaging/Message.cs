using Orleans.MoE.Runtime.Serialization;

namespace Orleans.MoE.Runtime.Messaging;

internal enum MessageKind : byte
{
    Request = 1,
    OneWayRequest = 2,
    Response = 3,
    Cancel = 4,
}

internal enum ResponseStatus : byte
{
    Ok = 0,

    /// <summary>The grain method threw; the body holds the exception.</summary>
    Error = 1,

    /// <summary>The target silo could not take the request (shutting down, declared dead); retry elsewhere.</summary>
    Rejected = 2,

    /// <summary>The message exceeded the maximum size.</summary>
    TooLarge = 3,
}

/// <summary>One request, response or cancellation between silos (or a client and a silo).</summary>
internal sealed class Message
{
    public long Id { get; set; }
    public MessageKind Kind { get; set; }
    public ResponseStatus Status { get; set; }
    public byte Hops { get; set; }
    public SiloAddress? Sender { get; set; }
    public SiloAddress? TargetSilo { get; set; }
    public GrainId Target { get; set; }
    public string Interface { get; set; } = "";
    public int MethodId { get; set; }

    /// <summary>UTC ticks after which the caller has given up (0: none).</summary>
    public long Deadline { get; set; }

    /// <summary>The grains whose calls led here (for call-chain reentrancy).</summary>
    public IReadOnlyList<string> CallChain { get; set; } = [];

    /// <summary>Which client connection a response goes back to, when the sender is a client behind a gateway.</summary>
    public string? Client { get; set; }

    public ReadOnlyMemory<byte> Body { get; set; }

    /// <summary>Returns the body's buffer to its pool (after the receiver is done with it).</summary>
    public PooledBuffer? BodyOwner { get; set; }

    public bool IsRequest => Kind is MessageKind.Request or MessageKind.OneWayRequest;

    public Message CreateResponse(ResponseStatus status, ReadOnlyMemory<byte> body, PooledBuffer? owner = null) => new()
    {
        Id = Id,
        Kind = MessageKind.Response,
        Status = status,
        Sender = TargetSilo,
        TargetSilo = Sender,
        Target = Target,
        Interface = Interface,
        MethodId = MethodId,
        Client = Client,
        Body = body,
        BodyOwner = owner,
    };

    /// <summary>This response, addressed to the client itself (the gateway relays it).</summary>
    public Message CreateForward() => new()
    {
        Id = Id,
        Kind = Kind,
        Status = Status,
        Target = Target,
        Interface = Interface,
        MethodId = MethodId,
        Client = Client,
        Body = Body,
        BodyOwner = BodyOwner,
    };

    public override string ToString() => $"{Kind} #{Id} {Interface}.{MethodId} -> {Target} ({Status})";
}
