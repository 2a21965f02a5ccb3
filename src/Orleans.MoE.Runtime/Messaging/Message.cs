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

    /// <summary>
    /// The receiver's cluster view has the sender declared dead: the sender must stop serving (it may
    /// hold activations the cluster has since placed elsewhere) and re-read the membership table.
    /// </summary>
    SenderDeclaredDead = 4,
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

    /// <summary>The inline body (all of it for a received message).</summary>
    public ReadOnlyMemory<byte> Body { get; set; }

    /// <summary>Large byte runs (tensors) that belong in <see cref="Body"/> but were not copied into it.</summary>
    public IReadOnlyList<BodyAttachment>? Attachments { get; set; }

    /// <summary>The body's length on the wire: inline bytes plus attachments.</summary>
    public long BodyLength
    {
        get
        {
            long length = Body.Length;
            if (Attachments is { } attachments)
            {
                foreach (var attachment in attachments)
                {
                    length += attachment.Data.Length;
                }
            }

            return length;
        }
    }

    /// <summary>Returns the body's buffer to its pool (after the receiver is done with it).</summary>
    public PooledBuffer? BodyOwner { get; set; }

    public bool IsRequest => Kind is MessageKind.Request or MessageKind.OneWayRequest;

    /// <summary>Sets the body to what <paramref name="writer"/> holds (the writer stays its owner).</summary>
    public Message WithBody(PooledBufferWriter writer)
    {
        Body = writer.WrittenMemory;
        Attachments = writer.Attachments;
        return this;
    }

    /// <summary>A reader over the body, attachments included.</summary>
    public Reader CreateReader() => new(Body, BodyOwner, Attachments);

    /// <summary>
    /// For delivery on this silo: the sender's body writer is disposed when its call ends, so the message
    /// takes a copy of the small inline bytes and a reference on each attachment's pooled buffer; the
    /// attached tensor bytes themselves are not copied.
    /// </summary>
    public void DetachFromSender()
    {
        var copy = new PooledBuffer(Body.Length);
        Body.CopyTo(copy.Memory);
        Body = copy.Memory;
        BodyOwner = copy;
        if (Attachments is { } attachments)
        {
            Attachments = attachments.ToArray();
            foreach (var attachment in attachments)
            {
                if (attachment.Owner is { } owner)
                {
                    copy.KeepAlive(owner);
                }
            }
        }
    }

    public Message CreateResponse(ResponseStatus status, PooledBufferWriter? body) => new()
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
        Body = body?.WrittenMemory ?? ReadOnlyMemory<byte>.Empty,
        Attachments = body?.Attachments,
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
        Attachments = Attachments,
        BodyOwner = BodyOwner,
    };

    public override string ToString() => $"{Kind} #{Id} {Interface}.{MethodId} -> {Target} ({Status})";
}
