using System.Diagnostics.Metrics;

namespace ModelRoute.Server.Operations;

/// <summary>
/// The gateway's own instruments on the <c>ModelRoute</c> meter (docs/observability.md). Labels are bounded sets only:
/// model, provider, status and outcome names, never execution or account ids or URLs, so the series count stays flat
/// however many executions and accounts there are. Gauges read from the store are registered by <c>StoreGauges</c>,
/// those of the providers by <c>ProviderGauges</c>, on <see cref="Meter"/>.
/// </summary>
public sealed class GatewayMetrics : IDisposable
{
    /// <summary>Seconds, from 1 ms to 10 min: provider calls and queue waits span all of it.</summary>
    private static readonly double[] LongBuckets =
        [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

    /// <summary>Seconds, from 0.5 ms to 10 s: a submission or a webhook send.</summary>
    private static readonly double[] ShortBuckets =
        [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly Counter<long> _submitted;
    private readonly Histogram<double> _submitDuration;
    private readonly Counter<long> _transitions;
    private readonly Histogram<double> _queueWait;
    private readonly Histogram<double> _providerCall;
    private readonly Counter<long> _attempts;
    private readonly Counter<long> _failovers;
    private readonly Histogram<double> _webhookDelivery;
    private readonly Counter<long> _held;
    private readonly Counter<long> _charged;
    private readonly bool _ownsMeter;

    /// <param name="meters">The host's meter factory; without one (unit tests) the meter is this object's own.</param>
    public GatewayMetrics(IMeterFactory? meters = null)
    {
        _ownsMeter = meters is null;
        Meter = meters?.Create(Telemetry.Name) ?? new Meter(Telemetry.Name);
        _submitted = Meter.CreateCounter<long>("modelroute.executions.submitted", "{execution}", "Executions accepted by this node, by model.");
        _submitDuration = Meter.CreateHistogram("modelroute.submit.duration", "s", "Time to answer a submission, by outcome (created, replayed, refused).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = ShortBuckets });
        _transitions = Meter.CreateCounter<long>("modelroute.execution.transitions", "{transition}", "Status changes committed by this node, by the status entered.");
        _queueWait = Meter.CreateHistogram("modelroute.execution.queue_wait", "s", "From creation to the first provider attempt's start, by model.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LongBuckets });
        _providerCall = Meter.CreateHistogram("modelroute.provider.call.duration", "s", "Provider calls by provider, model and outcome (succeeded, accepted, or the normalized error code).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LongBuckets });
        _attempts = Meter.CreateCounter<long>("modelroute.execution.attempts", "{attempt}", "Provider attempts started, by provider and model.");
        _failovers = Meter.CreateCounter<long>("modelroute.execution.failovers", "{attempt}", "Attempts made on another provider than the one before, by model and the provider taken.");
        _webhookDelivery = Meter.CreateHistogram("modelroute.webhook.delivery.duration", "s", "Webhook sends by outcome (succeeded, http_4xx, http_5xx, timeout, connect_error, refused, endpoint_gone).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = ShortBuckets });
        _held = Meter.CreateCounter<long>("modelroute.money.held", "{microdollar}", "Micro-dollars held at submission, by model.");
        _charged = Meter.CreateCounter<long>("modelroute.money.charged", "{microdollar}", "Micro-dollars charged at settlement, by model.");
    }

    /// <summary>The <c>ModelRoute</c> meter, for gauges registered elsewhere.</summary>
    public Meter Meter { get; }

    /// <summary>A submission answered: <paramref name="outcome"/> is created, replayed or refused.</summary>
    public void Submitted(string model, string outcome, TimeSpan elapsed, long heldMicros)
    {
        _submitDuration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("outcome", outcome));
        if (outcome == "created")
        {
            _submitted.Add(1, new KeyValuePair<string, object?>("model", model));
            _held.Add(heldMicros, new KeyValuePair<string, object?>("model", model));
        }
    }

    /// <summary>A committed status change on this node; a terminal one counts what was charged.</summary>
    public void Entered(Execution execution)
    {
        _transitions.Add(1, new KeyValuePair<string, object?>("status", execution.Status.ToWire()));
        if (execution.Status.IsTerminal() && execution.ChargedMicros is > 0 and var charged)
        {
            _charged.Add(charged, new KeyValuePair<string, object?>("model", execution.Model));
        }
    }

    /// <summary>An attempt starts: <paramref name="queueWait"/> is set on an execution's first attempt only.</summary>
    public void AttemptStarted(string provider, string model, bool failover, TimeSpan? queueWait)
    {
        var providerTag = new KeyValuePair<string, object?>("provider", provider);
        var modelTag = new KeyValuePair<string, object?>("model", model);
        _attempts.Add(1, providerTag, modelTag);
        if (failover)
        {
            _failovers.Add(1, modelTag, providerTag);
        }

        if (queueWait is { } wait)
        {
            _queueWait.Record(Math.Max(0, wait.TotalSeconds), modelTag);
        }
    }

    /// <summary>A provider call ended: <paramref name="outcome"/> is succeeded, accepted, or the normalized error code in lower case.</summary>
    public void ProviderCalled(string provider, string model, string outcome, TimeSpan elapsed) =>
        _providerCall.Record(
            elapsed.TotalSeconds,
            new KeyValuePair<string, object?>("provider", provider),
            new KeyValuePair<string, object?>("model", model),
            new KeyValuePair<string, object?>("outcome", outcome));

    /// <summary>A webhook send ended (see the instrument's description for the outcomes).</summary>
    public void WebhookSent(string outcome, TimeSpan elapsed) =>
        _webhookDelivery.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("outcome", outcome));

    public void Dispose()
    {
        if (_ownsMeter)
        {
            Meter.Dispose();
        }
    }
}
