using System.Net.Http.Headers;

namespace ModelRoute.Server.Providers.Gemini;

/// <summary>
/// The one table from the Gemini API's errors onto the gateway's (docs/providers/gemini.md, Errors). Google answers errors as
/// <c>{"error":{"code":…,"message":…,"status":"RESOURCE_EXHAUSTED","details":[…]}}</c>; the
/// canonical <c>status</c> decides, the HTTP status when the body is not Google's.
/// See docs/providers/gemini.md.
/// </summary>
public static class GeminiErrors
{
    public const int MaxMessageLength = 300;

    private static readonly Dictionary<string, (string Code, bool Retryable)> ByStatusName = new(StringComparer.Ordinal)
    {
        ["INVALID_ARGUMENT"] = (ExecutionErrorCodes.InvalidInput, false),        // 400
        ["FAILED_PRECONDITION"] = (ExecutionErrorCodes.InvalidInput, false),     // 400: e.g. free tier not available in the region
        ["OUT_OF_RANGE"] = (ExecutionErrorCodes.InvalidInput, false),            // 400
        ["UNAUTHENTICATED"] = (ExecutionErrorCodes.ProviderAuthFailed, false),   // 401
        ["PERMISSION_DENIED"] = (ExecutionErrorCodes.ProviderAuthFailed, false), // 403
        ["NOT_FOUND"] = (ExecutionErrorCodes.InvalidInput, false),               // 404: usually an unknown model name
        ["RESOURCE_EXHAUSTED"] = (ExecutionErrorCodes.ProviderRateLimited, true), // 429
        ["CANCELLED"] = (ExecutionErrorCodes.ProviderUnavailable, true),         // 499
        ["INTERNAL"] = (ExecutionErrorCodes.ProviderUnavailable, true),          // 500
        ["UNKNOWN"] = (ExecutionErrorCodes.ProviderUnavailable, true),           // 500
        ["UNAVAILABLE"] = (ExecutionErrorCodes.ProviderUnavailable, true),       // 503
        ["DEADLINE_EXCEEDED"] = (ExecutionErrorCodes.ProviderTimeout, true),     // 504
    };

    public static ProviderOutcome.Failed Map(string provider, int status, string body, HttpResponseHeaders? headers, string? apiKey, DateTimeOffset now)
    {
        var (statusName, message, reason, retryDelay) = Read(body);
        var (code, retryable) = statusName is not null && ByStatusName.TryGetValue(statusName, out var mapped) ? mapped : ByStatus(status);
        if (reason is "API_KEY_INVALID" or "API_KEY_SERVICE_BLOCKED" || (message?.Contains("API key not valid", StringComparison.OrdinalIgnoreCase) ?? false))
        {
            // Google answers a wrong key 400 INVALID_ARGUMENT with ErrorInfo reason API_KEY_INVALID.
            (code, retryable) = (ExecutionErrorCodes.ProviderAuthFailed, false);
        }
        else if (code == ExecutionErrorCodes.InvalidInput && message is not null && IsContextLength(message))
        {
            code = ExecutionErrorCodes.ContextLengthExceeded;
        }

        var text = $"Gemini answered {status}" + (statusName is null ? "" : $" {statusName}") + (message is null ? "." : $": {Clean(message, apiKey)}");
        TimeSpan? retryAfter = retryable ? retryDelay ?? RetryAfterHeader(headers, now) : null;
        return new ProviderOutcome.Failed(new ExecutionError(code, text, retryable, provider, status), retryAfter);
    }

    /// <summary>"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."</summary>
    public static bool IsContextLength(string message) =>
        message.Contains("token", StringComparison.OrdinalIgnoreCase)
        && (message.Contains("exceeds the maximum", StringComparison.OrdinalIgnoreCase)
            || message.Contains("too long", StringComparison.OrdinalIgnoreCase)
            || message.Contains("token limit", StringComparison.OrdinalIgnoreCase)
            || message.Contains("context", StringComparison.OrdinalIgnoreCase));

    private static (string Code, bool Retryable) ByStatus(int status) => status switch
    {
        400 or 404 or 413 or 422 => (ExecutionErrorCodes.InvalidInput, false),
        401 or 403 => (ExecutionErrorCodes.ProviderAuthFailed, false),
        408 or 504 => (ExecutionErrorCodes.ProviderTimeout, true),
        429 => (ExecutionErrorCodes.ProviderRateLimited, true),
        >= 500 => (ExecutionErrorCodes.ProviderUnavailable, true),
        _ => (ExecutionErrorCodes.ProviderError, false),
    };

    private static (string? Status, string? Message, string? Reason, TimeSpan? RetryDelay) Read(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;

            // Some Google front ends answer a one-element array around the error.
            if (root.ValueKind == JsonValueKind.Array && root.GetArrayLength() == 1)
            {
                root = root[0];
            }

            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("error", out var error) || error.ValueKind != JsonValueKind.Object)
            {
                return (null, null, null, null);
            }

            string? reason = null;
            TimeSpan? delay = null;
            if (error.TryGetProperty("details", out var details) && details.ValueKind == JsonValueKind.Array)
            {
                foreach (var detail in details.EnumerateArray().Where(d => d.ValueKind == JsonValueKind.Object))
                {
                    var type = String(detail, "@type") ?? "";
                    if (type.EndsWith("google.rpc.ErrorInfo", StringComparison.Ordinal))
                    {
                        reason ??= String(detail, "reason");
                    }
                    else if (type.EndsWith("google.rpc.RetryInfo", StringComparison.Ordinal))
                    {
                        delay ??= Duration(String(detail, "retryDelay"));
                    }
                }
            }

            return (String(error, "status"), String(error, "message"), reason, delay);
        }
        catch (JsonException)
        {
            return (null, null, null, null);
        }
    }

    /// <summary>A protobuf Duration in JSON: "13s", "0.5s", "1.250s".</summary>
    internal static TimeSpan? Duration(string? value) =>
        value is { Length: > 1 } && value.EndsWith('s')
        && double.TryParse(value[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds >= 0 && seconds < 86_400
            ? TimeSpan.FromSeconds(seconds)
            : null;

    private static string? String(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    internal static string Clean(string message, string? apiKey) => ProviderResponses.CleanMessage(message, apiKey, MaxMessageLength);

    private static TimeSpan? RetryAfterHeader(HttpResponseHeaders? headers, DateTimeOffset now) => ProviderResponses.RetryAfter(headers, now);
}
