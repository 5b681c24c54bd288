using System.Text.RegularExpressions;

namespace ModelRoute.Server.Providers.Fal;

/// <summary>
/// fal's failures onto the gateway's codes (docs/providers/fal.md, Error table), in one table: HTTP errors of the queue API
/// (bodies <c>{"detail": "…"}</c> or, for validation, <c>{"detail": [{"loc","msg","type"}]}</c>)
/// and webhooks with <c>status: "ERROR"</c>. See docs/providers/fal.md.
/// </summary>
public static partial class FalErrors
{
    public static ProviderOutcome.Failed FromHttp(string provider, int status, string body, TimeSpan? retryAfter)
    {
        var detail = Detail(body) ?? $"HTTP {status}";
        if (status is 400 or 422 && IsContentPolicy(detail))
        {
            return new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.ContentPolicyViolation, $"fal refused the content: {detail}", false, provider, status));
        }

        var (code, retryable) = status switch
        {
            400 or 404 or 405 or 413 or 422 => (ExecutionErrorCodes.InvalidInput, false),
            401 or 402 or 403 => (ExecutionErrorCodes.ProviderAuthFailed, false),
            408 or 504 => (ExecutionErrorCodes.ProviderTimeout, true),
            429 => (ExecutionErrorCodes.ProviderRateLimited, true),
            >= 500 => (ExecutionErrorCodes.ProviderUnavailable, true),
            _ => (ExecutionErrorCodes.ProviderError, false),
        };
        return new ProviderOutcome.Failed(new ExecutionError(code, $"fal answered {status}: {detail}", retryable, provider, status), status == 429 ? retryAfter : null);
    }

    /// <summary>A webhook with <c>status: "ERROR"</c>: its <c>error</c> text and the <c>payload</c>'s detail.</summary>
    public static ProviderOutcome.Failed FromWebhook(string provider, string? error, JsonElement payload)
    {
        var detail = payload.ValueKind == JsonValueKind.Object ? DetailOf(payload) : null;
        var text = string.Join(": ", new[] { error, detail }.Where(t => !string.IsNullOrWhiteSpace(t)));
        text = text.Length == 0 ? "The request failed at fal without a reason." : Truncate(text);
        if (IsContentPolicy(text))
        {
            return new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.ContentPolicyViolation, text, false, provider));
        }

        // fal reports the app's own HTTP answer as "Invalid status code: NNN".
        var match = StatusCode().Match(text);
        var status = match.Success ? int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : (int?)null;
        return status switch
        {
            422 or 400 => new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.InvalidInput, text, false, provider, status)),
            504 => new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.ProviderTimeout, text, true, provider, status)),
            >= 500 => new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.ProviderError, text, true, provider, status)),
            _ => new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.ProviderError, text, false, provider, status)),
        };
    }

    public static bool IsContentPolicy(string text) =>
        text.Contains("content_policy", StringComparison.OrdinalIgnoreCase)
        || text.Contains("content policy", StringComparison.OrdinalIgnoreCase)
        || text.Contains("NSFW", StringComparison.OrdinalIgnoreCase)
        || text.Contains("safety checker", StringComparison.OrdinalIgnoreCase)
        || text.Contains("flagged", StringComparison.OrdinalIgnoreCase);

    private static string? Detail(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            return doc.RootElement.ValueKind == JsonValueKind.Object ? DetailOf(doc.RootElement) : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary><c>detail</c> as text: a string, or validation entries as "body.prompt: field required (type)".</summary>
    private static string? DetailOf(JsonElement root)
    {
        if (!root.TryGetProperty("detail", out var detail))
        {
            return root.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? Truncate(m.GetString()!) : null;
        }

        if (detail.ValueKind == JsonValueKind.String)
        {
            return Truncate(detail.GetString()!);
        }

        if (detail.ValueKind != JsonValueKind.Array)
        {
            return null;
        }

        var parts = detail.EnumerateArray().Where(d => d.ValueKind == JsonValueKind.Object).Select(d =>
        {
            var loc = d.TryGetProperty("loc", out var l) && l.ValueKind == JsonValueKind.Array
                ? string.Join('.', l.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString() : x.GetRawText()))
                : "";
            var msg = d.TryGetProperty("msg", out var mm) && mm.ValueKind == JsonValueKind.String ? mm.GetString() : "";
            var type = d.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? $" ({t.GetString()})" : "";
            return $"{loc}{(loc.Length > 0 ? ": " : "")}{msg}{type}";
        });
        return Truncate(string.Join("; ", parts));
    }

    private static string Truncate(string text) => text.Length > 500 ? text[..500] + "…" : text;

    [GeneratedRegex(@"status code:?\s*(\d{3})", RegexOptions.IgnoreCase)]
    private static partial Regex StatusCode();
}
