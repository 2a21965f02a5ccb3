using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Orleans.MoE.Api.OpenAi;

namespace Orleans.MoE.Api.Protection;

/// <summary>
/// Bearer API keys. Keys are compared as SHA-256 digests with a constant-time comparison against every
/// configured key, so neither the time taken nor an early exit tells how much of a key was right. A
/// caller is known by a label ("key-2", or its address when no keys are configured), never by the key.
/// Pages a browser opens (Orleans' dashboard) may present the key as the <see cref="Cookie"/> instead,
/// which the mesh dashboard sets for their path when the user enters a key.
/// </summary>
internal sealed class ApiKeys
{
    /// <summary>The cookie holding the key for browser pages under <see cref="Hosting.ApiEndpoints.OrleansDashboardPath"/>.</summary>
    public const string Cookie = "moe-api-key";

    private readonly byte[][] _digests;

    public ApiKeys(IOptions<ApiOptions> options) =>
        _digests = options.Value.ApiKeys.Select(k => SHA256.HashData(Encoding.UTF8.GetBytes(k))).ToArray();

    public bool Required => _digests.Length > 0;

    /// <summary>The caller's label, or a 401 when keys are required and the request has no valid one (in the header, or with <paramref name="cookie"/> in the cookie).</summary>
    public string Authenticate(HttpContext context, bool cookie = false)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!Required)
        {
            return context.Connection.RemoteIpAddress?.ToString() ?? "anonymous";
        }

        var header = context.Request.Headers.Authorization.ToString();
        var key = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && header.Length > 7 ? header[7..].Trim()
            : cookie && context.Request.Cookies.TryGetValue(Cookie, out var value) && value.Length > 0 ? value
            : throw new ApiException(401, "invalid_request_error", "invalid_api_key", "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'.");
        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(key));
        var match = -1;
        for (var i = 0; i < _digests.Length; i++)
        {
            if (CryptographicOperations.FixedTimeEquals(presented, _digests[i]))
            {
                match = i;
            }
        }

        return match >= 0
            ? $"key-{match + 1}"
            : throw new ApiException(401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.");
    }
}

/// <summary>Bounds the requests one caller has running at once; one more is refused with 429 and Retry-After.</summary>
internal sealed class ConcurrencyLimits(IOptions<ApiOptions> options)
{
    private readonly Dictionary<string, int> _running = new(StringComparer.Ordinal);
    private readonly int _limit = options.Value.MaxConcurrentRequestsPerKey;

    public IDisposable Acquire(string caller)
    {
        lock (_running)
        {
            var running = _running.GetValueOrDefault(caller);
            if (running >= _limit)
            {
                throw new ApiException(429, "requests", "rate_limit_exceeded",
                    $"Too many concurrent requests: {_limit} are already running for this API key. Try again when one has finished.", retryAfterSeconds: 1);
            }

            _running[caller] = running + 1;
        }

        return new Lease(this, caller);
    }

    private void Release(string caller)
    {
        lock (_running)
        {
            if (--_running[caller] == 0)
            {
                _running.Remove(caller);
            }
        }
    }

    private sealed class Lease(ConcurrencyLimits owner, string caller) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                owner.Release(caller);
            }
        }
    }
}
