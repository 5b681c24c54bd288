using System.Net;

namespace ModelRoute.Server.Providers.Replicate;

/// <summary>
/// Replicate's failures onto the gateway's codes (docs/providers/replicate.md, Error table), in one table: HTTP errors of the API
/// (bodies are <c>application/problem+json</c> <c>{"title","detail","status"}</c>) and failed
/// predictions (their <c>error</c> text). See docs/providers/replicate.md.
/// </summary>
public static class ReplicateErrors
{
    /// <summary>An HTTP error answer of the API.</summary>
    public static ProviderOutcome.Failed FromHttp(string provider, int status, string body, TimeSpan? retryAfter)
    {
        var detail = Detail(body) ?? $"HTTP {status}";
        var message = $"Replicate answered {status}: {detail}";
        var (code, retryable) = status switch
        {
            400 or 404 or 409 or 413 or 422 => (ExecutionErrorCodes.InvalidInput, false),
            401 or 402 or 403 => (ExecutionErrorCodes.ProviderAuthFailed, false),
            408 => (ExecutionErrorCodes.ProviderTimeout, true),
            429 => (ExecutionErrorCodes.ProviderRateLimited, true),
            >= 500 => (ExecutionErrorCodes.ProviderUnavailable, true),
            _ => (ExecutionErrorCodes.ProviderError, false),
        };
        return new ProviderOutcome.Failed(new ExecutionError(code, message, retryable, provider, status), status == 429 ? retryAfter : null);
    }

    /// <summary>A prediction that ended <c>failed</c>, by its <c>error</c> text.</summary>
    public static ProviderOutcome.Failed FromPrediction(string provider, string? error)
    {
        var text = string.IsNullOrWhiteSpace(error) ? "The prediction failed without a reason." : Truncate(error.Trim());
        if (IsContentPolicy(text))
        {
            return new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.ContentPolicyViolation, text, false, provider));
        }

        // Replicate says so when an interrupted prediction is worth running again; other failures are
        // the model's answer to this input and would fail the same way.
        var transient = text.Contains("please retry", StringComparison.OrdinalIgnoreCase)
            || text.Contains("interrupted", StringComparison.OrdinalIgnoreCase)
            || text.Contains("out of memory", StringComparison.OrdinalIgnoreCase);
        return new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.ProviderError, text, transient, provider));
    }

    /// <summary>A prediction canceled at Replicate (not by the gateway, whose cancel ends the execution first).</summary>
    public static ProviderOutcome.Failed Canceled(string provider, string status) =>
        new(new ExecutionError(ExecutionErrorCodes.ProviderError, $"The prediction was {status} at Replicate.", false, provider));

    public static bool IsContentPolicy(string text) =>
        text.Contains("NSFW", StringComparison.OrdinalIgnoreCase)
        || text.Contains("safety", StringComparison.OrdinalIgnoreCase)
        || text.Contains("sensitive", StringComparison.OrdinalIgnoreCase)
        || text.Contains("flagged", StringComparison.OrdinalIgnoreCase)
        || text.Contains("content policy", StringComparison.OrdinalIgnoreCase);

    /// <summary><c>Retry-After</c> in seconds or as a date.</summary>
    public static TimeSpan? RetryAfter(HttpResponseMessage response, DateTimeOffset now) => ProviderResponses.RetryAfter(response.Headers, now);

    private static string? Detail(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return null;
            }

            foreach (var name in (string[])["detail", "title"])
            {
                if (root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.GetString() is { Length: > 0 } s)
                {
                    return Truncate(s);
                }
            }

            return null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string Truncate(string text) => text.Length > 500 ? text[..500] + "…" : text;
}
