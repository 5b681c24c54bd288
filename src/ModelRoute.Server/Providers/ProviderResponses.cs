using System.Net.Http.Headers;

namespace ModelRoute.Server.Providers;

/// <summary>What every adapter reads from a provider's answer in the same way.</summary>
public static class ProviderResponses
{
    private static readonly TimeSpan Longest = TimeSpan.FromDays(1);

    /// <summary>
    /// The delay the provider asked for: <c>retry-after-ms</c> (OpenAI's, in milliseconds) first, then the
    /// standard <c>retry-after</c> in seconds (fractions allowed) or as an HTTP date; at most a day.
    /// </summary>
    public static TimeSpan? RetryAfter(HttpResponseHeaders? headers, DateTimeOffset now)
    {
        if (headers is null)
        {
            return null;
        }

        if (headers.TryGetValues("retry-after-ms", out var ms)
            && double.TryParse(ms.FirstOrDefault(), NumberStyles.Float, CultureInfo.InvariantCulture, out var millis)
            && millis >= 0 && double.IsFinite(millis))
        {
            return TimeSpan.FromMilliseconds(Math.Min(millis, Longest.TotalMilliseconds));
        }

        if (!headers.TryGetValues("retry-after", out var values) || values.FirstOrDefault()?.Trim() is not { Length: > 0 } value)
        {
            return null;
        }

        if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds >= 0 && double.IsFinite(seconds))
        {
            return TimeSpan.FromSeconds(Math.Min(seconds, Longest.TotalSeconds));
        }

        return DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var date)
            ? (date > now ? Min(date - now, Longest) : TimeSpan.Zero)
            : null;
    }

    /// <summary>A provider's message as we pass it on: the key redacted, on one line, at most <paramref name="maxLength"/> characters.</summary>
    public static string CleanMessage(string message, string? apiKey, int maxLength = 300)
    {
        if (!string.IsNullOrEmpty(apiKey))
        {
            message = message.Replace(apiKey, "[redacted]", StringComparison.Ordinal);
        }

        message = message.ReplaceLineEndings(" ");
        return message.Length > maxLength ? message[..maxLength] + "…" : message;
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
}
