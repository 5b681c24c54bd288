using System.Diagnostics;
using System.Net.Http.Headers;

namespace ModelRoute.Server.Operations;

/// <summary>
/// An execution's stored trace context, a W3C <c>traceparent</c> (<c>00-&lt;trace id&gt;-&lt;span id&gt;-&lt;flags&gt;</c>), and
/// the spans parented on it (docs/observability.md#traces). With nothing listening to <see cref="Telemetry.Source"/>,
/// nothing here parses, allocates an activity, or starts one.
/// </summary>
public static class TraceContext
{
    public const string Header = "traceparent";

    /// <summary>The span of an execution's run on a node, which its attempts and in-run settlement are recorded under.</summary>
    public const string RunSpan = "modelroute.execution.run";

    private const int Length = 55;

    /// <summary>
    /// Starts the <c>modelroute.submit</c> span under the request's activity (ASP.NET Core's, made from the submitter's
    /// <c>traceparent</c>). A request that came without one is a trace of our own: ASP.NET Core leaves such a root
    /// unsampled when nothing listens to it, and the span (with all that follows it) is sampled as a root would be.
    /// </summary>
    public static Activity? StartSubmit()
    {
        if (!Telemetry.Source.HasListeners())
        {
            return null;
        }

        var parent = Activity.Current is { } request
            ? new ActivityContext(request.TraceId, request.SpanId, OwnRoot(request) ? ActivityTraceFlags.Recorded : request.ActivityTraceFlags)
            : default;
        return Telemetry.Source.StartActivity("modelroute.submit", ActivityKind.Internal, parent);
    }

    /// <summary>
    /// The request's own span when a tracer records it (ASP.NET Core's server span): a request that submits one execution
    /// is recorded on it rather than in a <c>modelroute.submit</c> span of its own, a span less per execution
    /// (docs/observability.md#traces). Null when nothing records the request, or the current activity is one of ours.
    /// </summary>
    public static Activity? RecordedRequest() =>
        Activity.Current is { Kind: ActivityKind.Server, IsAllDataRequested: true, Recorded: true } request && request.Source != Telemetry.Source
            ? request
            : null;

    /// <summary>
    /// The current <c>modelroute.execution.run</c> span of <paramref name="traceParent"/>'s trace when it is recorded: a
    /// settlement within a run is recorded on it rather than in a span of its own (docs/observability.md#traces).
    /// </summary>
    public static Activity? CurrentRun(string? traceParent) =>
        Activity.Current is { IsAllDataRequested: true } current && current.Source == Telemetry.Source
        && string.Equals(current.OperationName, RunSpan, StringComparison.Ordinal) && SameTrace(current, traceParent)
            ? current
            : null;

    /// <summary>
    /// The trace context to store with a submission: <paramref name="submitSpan"/>'s when it is recorded, else the
    /// ambient activity's (sampled when it is a root of our own, see <see cref="StartSubmit"/>), else a new trace, so
    /// that every execution has a trace id even when nothing listens.
    /// </summary>
    public static string ForSubmission(Activity? submitSpan)
    {
        if (submitSpan is { IsAllDataRequested: true } && Of(submitSpan) is { } recorded)
        {
            return recorded;
        }

        if (Activity.Current is { IdFormat: ActivityIdFormat.W3C } current)
        {
            return OwnRoot(current) ? Format(current.TraceId, current.SpanId, sampled: true) : current.Id!;
        }

        return Format(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), sampled: true);
    }

    /// <summary>
    /// An activity that began a trace here (no submitter's traceparent) which no sampler decided on: ASP.NET Core made it
    /// for its own logging because nothing listens to its source. When a tracer does listen, its sampler's "no" stands.
    /// </summary>
    private static bool OwnRoot(Activity activity) => activity.ParentId is null && !activity.Recorded && !activity.Source.HasListeners();

    /// <summary>The 32-hex-digit trace id of <paramref name="traceParent"/>; null when there is none or it is not a traceparent.</summary>
    public static string? TraceIdOf(string? traceParent) =>
        traceParent is { Length: Length } && traceParent[2] == '-' && traceParent[35] == '-' ? traceParent.Substring(3, 32) : null;

    /// <summary>
    /// Starts <paramref name="name"/> in the trace of <paramref name="traceParent"/>: under the current activity when
    /// that is one of ours in the same trace (a run's attempt, its settlement), else directly under the stored context
    /// (work resumed on another node, a callback's request). Null when nothing listens.
    /// </summary>
    public static Activity? Start(string name, string? traceParent, ActivityKind kind = ActivityKind.Internal)
    {
        if (!Telemetry.Source.HasListeners())
        {
            return null;
        }

        var current = Activity.Current;
        if (current is not null && current.Source == Telemetry.Source && SameTrace(current, traceParent))
        {
            return Telemetry.Source.StartActivity(name, kind);
        }

        return ActivityContext.TryParse(traceParent, null, out var parent)
            ? Telemetry.Source.StartActivity(name, kind, parent)
            : Telemetry.Source.StartActivity(name, kind, default(ActivityContext));
    }

    /// <summary>
    /// Sets <c>traceparent</c> on an outbound request unless one is set: the current activity's when it is a recorded one
    /// of ours in the same trace, else the stored <paramref name="traceParent"/>. HttpClient adds one only when something
    /// listens to it; a provider or a receiver gets one either way.
    /// </summary>
    public static void Propagate(HttpRequestHeaders headers, string? traceParent)
    {
        if (traceParent is null || headers.Contains(Header))
        {
            return;
        }

        var current = Activity.Current;
        var value = current is { IsAllDataRequested: true } && current.Source == Telemetry.Source && SameTrace(current, traceParent) && Of(current) is { } own
            ? own
            : traceParent;
        headers.TryAddWithoutValidation(Header, value);
    }

    /// <summary>Sets the span's status to Error with <c>error.type</c> (a normalized error code or an outcome name).</summary>
    public static void Failed(Activity? span, string errorType)
    {
        if (span is null)
        {
            return;
        }

        span.SetTag("error.type", errorType);
        span.SetStatus(ActivityStatusCode.Error);
    }

    /// <summary>The activity's context as a traceparent; a W3C activity's id is exactly that, and is kept on it.</summary>
    private static string? Of(Activity activity) =>
        activity.IdFormat == ActivityIdFormat.W3C ? activity.Id : null;

    private static bool SameTrace(Activity activity, string? traceParent) =>
        traceParent is { Length: Length } && activity.IdFormat == ActivityIdFormat.W3C
        && activity.TraceId.ToHexString().AsSpan().SequenceEqual(traceParent.AsSpan(3, 32));

    private static string Format(ActivityTraceId traceId, ActivitySpanId spanId, bool sampled) =>
        string.Concat("00-", traceId.ToHexString(), "-", spanId.ToHexString(), sampled ? "-01" : "-00");
}

/// <summary>The attribute names of the gateway's spans (docs/observability.md#traces), OpenTelemetry's where one fits.</summary>
public static class TraceTags
{
    public const string ExecutionId = "modelroute.execution.id";
    public const string Model = "modelroute.model";
    public const string Provider = "modelroute.provider";
    public const string ProviderModel = "modelroute.provider_model";
    public const string Node = "modelroute.node";
    public const string HandedOver = "modelroute.execution.handed_over";
    public const string Attempt = "modelroute.attempt";
    public const string Failover = "modelroute.failover";
    public const string Outcome = "modelroute.outcome";
    public const string Status = "modelroute.execution.status";
    public const string ChargedMicros = "modelroute.execution.charged_micros";
    public const string DeliveryId = "modelroute.webhook.delivery_id";
    public const string EventType = "modelroute.webhook.event_type";
    public const string HttpStatusCode = "http.response.status_code";
}
