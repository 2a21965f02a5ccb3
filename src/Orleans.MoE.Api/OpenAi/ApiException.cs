using Orleans.MoE.Grains.Gates;
using Orleans.MoE.Grains.Generation;
using Orleans.MoE.Grains.Catalog;

namespace Orleans.MoE.Api.OpenAi;

/// <summary>
/// An error as OpenAI's API reports it: an HTTP status and <c>{"error": {"message", "type", "param", "code"}}</c>.
/// <see cref="RetryAfterSeconds"/> becomes a Retry-After header.
/// </summary>
public sealed class ApiException : Exception
{
    public ApiException(int status, string type, string? code, string message, string? param = null, int? retryAfterSeconds = null)
        : base(message)
    {
        Status = status;
        Type = type;
        Code = code;
        Param = param;
        RetryAfterSeconds = retryAfterSeconds;
    }

    public ApiException()
        : this(500, "server_error", null, "internal error")
    {
    }

    public ApiException(string message)
        : this(500, "server_error", null, message)
    {
    }

    public ApiException(string message, Exception innerException)
        : base(message, innerException)
    {
        Status = 500;
        Type = "server_error";
    }

    public int Status { get; }

    public string Type { get; }

    public string? Code { get; }

    public string? Param { get; }

    public int? RetryAfterSeconds { get; }

    /// <summary>A request the API cannot accept as written (400).</summary>
    public static ApiException Invalid(string message, string? param = null, string? code = null) =>
        new(400, "invalid_request_error", code, message, param);

    /// <summary>
    /// The API error for a failure of the mesh (or null when it is not one the client should see as such):
    /// unknown model 404, context exceeded 400, busy or unavailable 503 with Retry-After, timeout 504.
    /// </summary>
    public static ApiException? FromMesh(Exception error) => error switch
    {
        UnknownModelException e => new(404, "invalid_request_error", "model_not_found", e.Message, "model"),
        ContextLengthExceededException e => Invalid(e.Message, "max_tokens", "context_length_exceeded"),
        MeshBusyException e => new(503, "server_error", "overloaded", e.Message, retryAfterSeconds: 1),
        ModelUnavailableException e => new(503, "server_error", "model_unavailable", e.Message, "model", 5),
        Grains.Experts.ExpertCapacityException e => new(503, "server_error", "mesh_full", e.Message, retryAfterSeconds: 5),
        MeshStepException e => new(503, "server_error", "mesh_unavailable", e.Message, retryAfterSeconds: 1),
        SequenceLostException e => new(503, "server_error", "mesh_unavailable", e.Message, retryAfterSeconds: 1),
        TimeoutException e => new(504, "server_error", "timeout", $"the mesh did not answer in time: {e.Message}"),
        _ when Grains.MeshFaults.IsTransient(error) || error is System.Net.Sockets.SocketException =>
            new(503, "server_error", "mesh_unavailable", $"the mesh cannot be reached: {error.Message}", retryAfterSeconds: 1),
        _ => null,
    };
}
