using System.Diagnostics;
using ModelRoute.Server.Operations;
using ModelRoute.Server.Providers;

namespace ModelRoute.Server.Routing;

/// <summary>
/// What a provider attempt records (docs/observability.md#traces): its span, parented on the execution's trace, and the
/// attempt, failover, queue-wait and call-latency metrics. Labels come from bounded sets only (provider and model
/// names, outcome names); with nothing listening no span is made and no label string is built.
/// </summary>
public static class AttemptTelemetry
{
    /// <summary>
    /// An attempt of <paramref name="claimed"/> (as claimed, before its start) starts on <paramref name="route"/>: a
    /// failover when the attempt before it was on another provider; its queue wait is counted on the first attempt only.
    /// </summary>
    public static Activity? Started(GatewayMetrics metrics, Execution claimed, RouteDefinition route, int attemptNumber, DateTimeOffset startedAt)
    {
        var log = claimed.AttemptLog;
        var failover = log.Count > 0 && !string.Equals(log[^1].Provider, route.Provider, StringComparison.Ordinal);
        metrics.AttemptStarted(route.Provider, claimed.Model, failover, log.Count == 0 && claimed.Attempts == 0 ? startedAt - claimed.CreatedAt : null);
        var span = TraceContext.Start("modelroute.provider.attempt", claimed.TraceParent, ActivityKind.Client);
        if (span is { IsAllDataRequested: true })
        {
            span.SetTag(TraceTags.ExecutionId, claimed.Id);
            span.SetTag(TraceTags.Provider, route.Provider);
            span.SetTag(TraceTags.Model, claimed.Model);
            span.SetTag(TraceTags.ProviderModel, route.ProviderModel);
            span.SetTag(TraceTags.Attempt, attemptNumber);
            span.SetTag(TraceTags.Failover, failover);
        }

        return span;
    }

    /// <summary>
    /// The call ended with <paramref name="outcome"/> (<see cref="OutcomeLabel"/>): counted in the metrics and in this node's
    /// provider health; ends the span, an error one when it failed.
    /// </summary>
    public static void Ended(GatewayMetrics metrics, ProviderHealth? health, Activity? span, string provider, string model, string outcome, TimeSpan elapsed)
    {
        metrics.ProviderCalled(provider, model, outcome, elapsed);
        health?.CallEnded(provider, outcome, elapsed);
        if (span is null)
        {
            return;
        }

        span.SetTag(TraceTags.Outcome, outcome);
        if (outcome is not (Succeeded or Accepted))
        {
            TraceContext.Failed(span, outcome);
        }

        span.Dispose();
    }

    public const string Succeeded = "succeeded";

    public const string Accepted = "accepted";

    /// <summary>The metric and span outcome of a provider's answer: succeeded, accepted, or the normalized error code in lower case.</summary>
    public static string OutcomeLabel(ProviderOutcome outcome) => outcome switch
    {
        ProviderOutcome.Completed => Succeeded,
        ProviderOutcome.Accepted => Accepted,
        ProviderOutcome.Failed failed => ErrorLabel(failed.Error.Code),
        _ => "running",
    };

    /// <summary>A normalized error code in lower case, without a new string for the codes of docs/api.md#execution-errors.</summary>
    public static string ErrorLabel(string code) => code switch
    {
        ExecutionErrorCodes.InvalidInput => "invalid_input",
        ExecutionErrorCodes.ContentPolicyViolation => "content_policy_violation",
        ExecutionErrorCodes.ContextLengthExceeded => "context_length_exceeded",
        ExecutionErrorCodes.ProviderAuthFailed => "provider_auth_failed",
        ExecutionErrorCodes.ProviderRateLimited => "provider_rate_limited",
        ExecutionErrorCodes.ProviderTimeout => "provider_timeout",
        ExecutionErrorCodes.ProviderUnavailable => "provider_unavailable",
        ExecutionErrorCodes.ProviderError => "provider_error",
        ExecutionErrorCodes.NoProviderAvailable => "no_provider_available",
        ExecutionErrorCodes.DeadlineExceeded => "deadline_exceeded",
        ExecutionErrorCodes.InternalError => "internal_error",
        _ => "provider_error",
    };
}
