using System.Net.Http.Headers;

namespace ModelRoute.Server.Providers.Anthropic;

/// <summary>
/// The one table from Anthropic's errors onto the gateway's (docs/providers/anthropic.md, Errors). Anthropic answers errors as
/// <c>{"type":"error","error":{"type":…,"message":…},"request_id":…}</c>; the error type decides,
/// and the HTTP status decides when the body is not Anthropic's (a proxy's HTML page, say).
/// See docs/providers/anthropic.md.
/// </summary>
public static class AnthropicErrors
{
    /// <summary>Longest provider message kept in an execution's error.</summary>
    public const int MaxMessageLength = 300;

    /// <summary>error.type → (code, retryable). The status is only the fallback.</summary>
    private static readonly Dictionary<string, (string Code, bool Retryable)> ByType = new(StringComparer.Ordinal)
    {
        ["invalid_request_error"] = (ExecutionErrorCodes.InvalidInput, false),              // 400
        ["authentication_error"] = (ExecutionErrorCodes.ProviderAuthFailed, false),         // 401
        ["billing_error"] = (ExecutionErrorCodes.ProviderAuthFailed, false),                // 402: the operator's account, not the input
        ["permission_error"] = (ExecutionErrorCodes.ProviderAuthFailed, false),             // 403
        ["not_found_error"] = (ExecutionErrorCodes.InvalidInput, false),                    // 404: usually an unknown model name
        ["request_too_large"] = (ExecutionErrorCodes.InvalidInput, false),                  // 413: over the byte limit, not the token window
        ["rate_limit_error"] = (ExecutionErrorCodes.ProviderRateLimited, true),             // 429
        ["api_error"] = (ExecutionErrorCodes.ProviderUnavailable, true),                    // 500
        ["timeout_error"] = (ExecutionErrorCodes.ProviderTimeout, true),                    // 504
        ["overloaded_error"] = (ExecutionErrorCodes.ProviderUnavailable, true),             // 529
    };

    /// <summary>Maps an error answer. <paramref name="apiKey"/> is only used to make sure it is never repeated.</summary>
    public static ProviderOutcome.Failed Map(string provider, int status, string body, HttpResponseHeaders? headers, string? apiKey, DateTimeOffset now)
    {
        var (type, message) = Read(body);
        var (code, retryable) = type is not null && ByType.TryGetValue(type, out var mapped) ? mapped : ByStatus(status);
        if (code == ExecutionErrorCodes.InvalidInput && message is not null && IsContextLength(message))
        {
            code = ExecutionErrorCodes.ContextLengthExceeded;
        }
        else if (code == ExecutionErrorCodes.InvalidInput && message is not null && message.Contains("credit balance", StringComparison.OrdinalIgnoreCase))
        {
            // "Your credit balance is too low to access the Anthropic API": the operator's account, not the input.
            code = ExecutionErrorCodes.ProviderAuthFailed;
        }

        var text = $"Anthropic answered {status}" + (type is null ? "" : $" {type}") + (message is null ? "." : $": {Clean(message, apiKey)}");
        var retryAfter = retryable ? RetryAfter(headers, now) : null;
        return new ProviderOutcome.Failed(new ExecutionError(code, text, retryable, provider, status), retryAfter);
    }

    /// <summary>Anthropic says "prompt is too long: N tokens > M maximum" (and, for max_tokens, "… exceed context limit").</summary>
    public static bool IsContextLength(string message) =>
        message.Contains("prompt is too long", StringComparison.OrdinalIgnoreCase)
        || message.Contains("exceed context limit", StringComparison.OrdinalIgnoreCase)
        || message.Contains("context window", StringComparison.OrdinalIgnoreCase);

    private static (string Code, bool Retryable) ByStatus(int status) => status switch
    {
        400 or 404 or 413 or 422 => (ExecutionErrorCodes.InvalidInput, false),
        401 or 402 or 403 => (ExecutionErrorCodes.ProviderAuthFailed, false),
        408 or 504 => (ExecutionErrorCodes.ProviderTimeout, true),
        409 or 429 => (status == 429 ? ExecutionErrorCodes.ProviderRateLimited : ExecutionErrorCodes.ProviderUnavailable, true),
        >= 500 => (ExecutionErrorCodes.ProviderUnavailable, true),
        _ => (ExecutionErrorCodes.ProviderError, false),
    };

    private static (string? Type, string? Message) Read(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object)
            {
                return (String(error, "type"), String(error, "message"));
            }
        }
        catch (JsonException)
        {
            // Not Anthropic's error body: the status decides.
        }

        return (null, null);
    }

    private static string? String(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    /// <summary>Truncated, on one line, and never carrying the key.</summary>
    internal static string Clean(string message, string? apiKey) => ProviderResponses.CleanMessage(message, apiKey, MaxMessageLength);

    /// <summary>retry-after in seconds (possibly fractional) or as an HTTP date; absent or unreadable → null.</summary>
    internal static TimeSpan? RetryAfter(HttpResponseHeaders? headers, DateTimeOffset now) => ProviderResponses.RetryAfter(headers, now);
}
