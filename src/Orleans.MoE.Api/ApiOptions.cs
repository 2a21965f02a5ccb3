using Microsoft.Extensions.Options;

namespace Orleans.MoE.Api;

/// <summary>The front end's settings (configuration section "Api"; environment variables such as <c>Api__ApiKeys__0</c>).</summary>
public sealed class ApiOptions
{
    /// <summary>Bearer keys accepted; none configured means the API is open (fine on loopback, not on a network).</summary>
    public List<string> ApiKeys { get; set; } = [];

    /// <summary>Largest request body accepted (413 beyond it).</summary>
    public long MaxRequestBodyBytes { get; set; } = 1 << 20;

    /// <summary>Most prompt tokens per request; 0: the model's context is the only limit.</summary>
    public int MaxPromptTokens { get; set; }

    /// <summary>Largest <c>max_tokens</c> a request may ask for (and the default cap of a chat completion).</summary>
    public int MaxTokens { get; set; } = 4096;

    /// <summary>Most choices (<c>n</c>) per request.</summary>
    public int MaxChoices { get; set; } = 8;

    /// <summary>Requests one key (or, without keys, one client address) may have running at once; more get 429.</summary>
    public int MaxConcurrentRequestsPerKey { get; set; } = 32;

    /// <summary>How long one request may take in all before it is stopped (504, or an error event in a stream).</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromMinutes(10);
}

internal sealed class ApiOptionsValidator : IValidateOptions<ApiOptions>
{
    public ValidateOptionsResult Validate(string? name, ApiOptions options)
    {
        var errors = new List<string>();
        if (options.ApiKeys.Any(k => string.IsNullOrWhiteSpace(k) || k.Length < 8))
        {
            errors.Add("Api:ApiKeys: every key must have at least 8 characters");
        }

        if (options.MaxRequestBodyBytes < 1024)
        {
            errors.Add("Api:MaxRequestBodyBytes must be at least 1024");
        }

        if (options.MaxPromptTokens < 0 || options.MaxTokens < 1 || options.MaxChoices < 1 || options.MaxConcurrentRequestsPerKey < 1)
        {
            errors.Add("Api: MaxPromptTokens must be ≥ 0; MaxTokens, MaxChoices and MaxConcurrentRequestsPerKey ≥ 1");
        }

        if (options.RequestTimeout <= TimeSpan.Zero)
        {
            errors.Add("Api:RequestTimeout must be positive");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
