namespace ModelRoute.Server.Routing;

/// <summary>Exponential backoff with equal jitter, never shorter than a provider's Retry-After.</summary>
public static class RetryBackoff
{
    /// <param name="attempt">The attempt that just failed, from 1.</param>
    /// <param name="jitter">A value in [0, 1).</param>
    public static TimeSpan Delay(int attempt, TimeSpan baseDelay, TimeSpan maxDelay, TimeSpan? retryAfter, double jitter)
    {
        var exponent = Math.Clamp(attempt - 1, 0, 30);
        var ceiling = TimeSpan.FromTicks(Math.Min(maxDelay.Ticks, baseDelay.Ticks * (1L << Math.Min(exponent, 20))));
        var delay = (ceiling / 2) + (ceiling / 2 * jitter);
        return retryAfter is { } after && after > delay ? after : delay;
    }
}
