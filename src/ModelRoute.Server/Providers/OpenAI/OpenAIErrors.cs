using System.Net.Http.Headers;
using System.Text.RegularExpressions;

namespace ModelRoute.Server.Providers.OpenAI;

/// <summary>
/// The one table from OpenAI's HTTP statuses and error bodies
/// (<c>{"error":{"message","type","param","code"}}</c>) to normalized errors. Written from OpenAI's
/// public error-code guide; OpenAI-compatible servers (vLLM, Ollama, Together, Groq) answer with the
/// same statuses and body shape, so the table serves them too. See docs/providers/openai.md.
/// </summary>
public static partial class OpenAIErrors
{
    /// <summary>Provider messages are kept short: they end up in execution JSON and webhooks.</summary>
    public const int MaxMessageLength = 300;

    /// <summary>The parts of an OpenAI error body the table looks at; any may be missing.</summary>
    public sealed record ErrorBody(string? Message, string? Type, string? Code, string? Param);

    /// <summary>
    /// Maps a non-2xx answer to a normalized failure. <paramref name="apiKey"/> is scrubbed from the
    /// message in case a provider (or a proxy in front of it) echoes the key back.
    /// </summary>
    public static ProviderOutcome.Failed Map(string provider, int status, string? body, HttpResponseHeaders? headers, DateTimeOffset now, string? apiKey)
    {
        var error = Parse(body);
        var code = error.Code?.ToLowerInvariant();
        var type = error.Type?.ToLowerInvariant();
        var (normalized, retryable) = Classify(status, code, type);
        var message = Describe(status, error, apiKey);
        var retryAfter = retryable && headers is not null ? RetryAfter(headers, now) : null;
        return new ProviderOutcome.Failed(new ExecutionError(normalized, message, retryable, provider, status), retryAfter);
    }

    /// <summary>The table itself: normalized code and whether trying again can help.</summary>
    public static (string Code, bool Retryable) Classify(int status, string? code, string? type)
    {
        return status switch
        {
            400 when IsContextLength(code) => (ExecutionErrorCodes.ContextLengthExceeded, false),
            400 when IsContentPolicy(code, type) => (ExecutionErrorCodes.ContentPolicyViolation, false),

            // The caller's input is fine: the route names a model this provider account does not have.
            // That is the operator's configuration to fix, so it is not blamed on the caller.
            404 when code is "model_not_found" => (ExecutionErrorCodes.ProviderError, false),
            400 or 404 or 413 or 422 => (ExecutionErrorCodes.InvalidInput, false),
            401 or 403 => (ExecutionErrorCodes.ProviderAuthFailed, false),
            408 => (ExecutionErrorCodes.ProviderTimeout, true),
            409 => (ExecutionErrorCodes.ProviderUnavailable, true),

            // Out of credits or over the monthly spend limit: waiting does not help, an operator must
            // fund or raise the provider account, as with a revoked key. So it is an account failure.
            429 when IsQuota(code, type) => (ExecutionErrorCodes.ProviderAuthFailed, false),
            429 => (ExecutionErrorCodes.ProviderRateLimited, true),
            500 or 502 or 503 or 504 => (ExecutionErrorCodes.ProviderUnavailable, true),

            // Other 5xx (e.g. a load balancer's 520-529) are the provider's trouble and pass.
            >= 500 and <= 599 => (ExecutionErrorCodes.ProviderUnavailable, true),

            // Anything else (3xx, 402, 405, 415, …) is an answer OpenAI's API does not give.
            _ => (ExecutionErrorCodes.ProviderError, false),
        };
    }

    /// <summary>A 200 whose body is not what the endpoint answers: nothing to retry, the provider misbehaves.</summary>
    public static ProviderOutcome.Failed Malformed(string provider, string what) =>
        new(new ExecutionError(ExecutionErrorCodes.ProviderError, $"The provider's answer was not understood: {what}.", false, provider, 200));

    /// <summary>Reads the error object; a body that is not OpenAI's shape (an HTML error page, say) gives empty fields.</summary>
    public static ErrorBody Parse(string? body)
    {
        if (string.IsNullOrWhiteSpace(body))
        {
            return new ErrorBody(null, null, null, null);
        }

        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("error", out var error))
            {
                // Some compatible servers answer {"error": "message"} rather than an object.
                if (error.ValueKind == JsonValueKind.String)
                {
                    return new ErrorBody(error.GetString(), null, null, null);
                }

                if (error.ValueKind == JsonValueKind.Object)
                {
                    return new ErrorBody(Text(error, "message"), Text(error, "type"), Text(error, "code"), Text(error, "param"));
                }
            }
        }
        catch (JsonException)
        {
            // Not JSON: described by status alone.
        }

        return new ErrorBody(null, null, null, null);
    }

    /// <summary>
    /// The delay the provider asked for: <c>retry-after-ms</c> (OpenAI's own, in milliseconds) first,
    /// then the standard <c>retry-after</c> in seconds or as an HTTP date.
    /// </summary>
    public static TimeSpan? RetryAfter(HttpResponseHeaders headers, DateTimeOffset now) => ProviderResponses.RetryAfter(headers, now);

    /// <summary>The provider's message, short and without secrets; or a description from the status.</summary>
    public static string Describe(int status, ErrorBody error, string? apiKey)
    {
        var message = string.IsNullOrWhiteSpace(error.Message)
            ? $"The provider answered HTTP {status.ToString(CultureInfo.InvariantCulture)}."
            : error.Message.Trim();
        message = Scrub(message, apiKey);
        return message.Length <= MaxMessageLength ? message : message[..(MaxMessageLength - 1)] + "…";
    }

    /// <summary>Removes the configured key and anything shaped like an OpenAI secret key.</summary>
    public static string Scrub(string text, string? apiKey)
    {
        if (!string.IsNullOrEmpty(apiKey))
        {
            text = text.Replace(apiKey, "[redacted]", StringComparison.Ordinal);
        }

        return SecretKeyPattern().Replace(text, "[redacted]");
    }

    private static bool IsContextLength(string? code) => code is "context_length_exceeded" or "string_above_max_length";

    private static bool IsContentPolicy(string? code, string? type) =>
        code is "content_policy_violation" or "content_filter" or "moderation_blocked"
        || type is "content_policy_violation" or "moderation";

    private static bool IsQuota(string? code, string? type) =>
        code is "insufficient_quota" or "billing_hard_limit_reached" || type is "insufficient_quota";

    private static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    [GeneratedRegex(@"\bsk-[A-Za-z0-9_\-]{6,}", RegexOptions.CultureInvariant)]
    private static partial Regex SecretKeyPattern();
}
