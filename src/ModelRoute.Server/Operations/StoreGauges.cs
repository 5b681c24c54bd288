using System.Diagnostics.Metrics;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Operations;

/// <summary>
/// The store-wide gauges (docs/observability.md#store-gauges): unfinished executions by status, the webhook outbox's
/// backlog and its oldest delivery's age, money held by unfinished executions and the oldest hold's age. The store is
/// counted every <c>ModelRoute:Metrics:SampleInterval</c>, the first time right after start; a scrape reads the last
/// counts and never touches the store. A failed count keeps the previous one. Every node counts the same shared store.
/// </summary>
public sealed partial class StoreGauges : BackgroundService
{
    private static readonly string[] ActiveStatuses = ["PENDING", "PROCESSING", "AWAITING_WEBHOOK"];

    private readonly IOperationalCounts _store;
    private readonly TimeProvider _time;
    private readonly TimeSpan _interval;
    private readonly StoreAvailability? _availability;
    private readonly ILogger<StoreGauges> _logger;
    private StoreSample? _last;
    private bool _failing;

    public StoreGauges(
        IOperationalCounts store,
        GatewayMetrics metrics,
        IOptions<ModelRouteOptions> options,
        TimeProvider time,
        ILogger<StoreGauges> logger,
        StoreAvailability? availability = null)
    {
        _store = store;
        _time = time;
        _interval = options.Value.Metrics.SampleInterval;
        _logger = logger;
        _availability = availability;
        var meter = metrics.Meter;
        meter.CreateObservableGauge("modelroute.executions.active", ObserveActive, "{execution}",
            "Unfinished executions in the whole store, by status (PENDING, PROCESSING, AWAITING_WEBHOOK).");
        meter.CreateObservableGauge("modelroute.webhook.outbox.backlog", () => Observe(c => c.OutboxBacklog), "{delivery}",
            "Webhook deliveries in the whole store not yet delivered nor given up.");
        meter.CreateObservableGauge("modelroute.webhook.outbox.oldest_age", () => ObserveAge(c => c.OldestDeliveryAt), "s",
            "Age of the oldest pending webhook delivery; 0 when there is none.");
        meter.CreateObservableGauge("modelroute.money.outstanding_held", () => Observe(c => c.HeldMicros), "{microdollar}",
            "Micro-dollars held by unfinished executions in the whole store.");
        meter.CreateObservableGauge("modelroute.money.oldest_hold_age", () => ObserveAge(c => c.OldestHoldAt), "s",
            "Age of the oldest unfinished execution holding money; 0 when there is none.");
    }

    /// <summary>The last counts taken; null until the first succeeds.</summary>
    public OperationalCounts? Last => LastSample?.Counts;

    /// <summary>The last counts taken with when they were taken, read together (docs/api.md#operator-overview).</summary>
    public StoreSample? LastSample => Volatile.Read(ref _last);

    /// <summary>Counts the store now and keeps the result; a failure keeps the previous counts and is logged once per outage.</summary>
    public async Task SampleAsync(CancellationToken cancellationToken)
    {
        try
        {
            var counts = await _store.CountAsync(cancellationToken);
            Volatile.Write(ref _last, new StoreSample(counts, _time.GetUtcNow()));
            if (_failing)
            {
                _failing = false;
                LogSamplingResumed(_logger);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            if (!_failing)
            {
                _failing = true;
                if (_availability?.Report(ex) != true)
                {
                    LogSamplingFailed(_logger, ex);
                }
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_interval, _time);
        try
        {
            do
            {
                await SampleAsync(stoppingToken);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down.
        }
    }

    private IEnumerable<Measurement<long>> ObserveActive()
    {
        if (Last is not { } last)
        {
            return [];
        }

        long[] counts = [last.Pending, last.Processing, last.AwaitingWebhook];
        var measurements = new Measurement<long>[ActiveStatuses.Length];
        for (var i = 0; i < measurements.Length; i++)
        {
            measurements[i] = new Measurement<long>(counts[i], new KeyValuePair<string, object?>("status", ActiveStatuses[i]));
        }

        return measurements;
    }

    private IEnumerable<Measurement<long>> Observe(Func<OperationalCounts, long> value) =>
        Last is { } last ? [new Measurement<long>(value(last))] : [];

    /// <summary>Seconds since <paramref name="since"/>'s timestamp, now: an old delivery or hold keeps ageing between counts.</summary>
    private IEnumerable<Measurement<double>> ObserveAge(Func<OperationalCounts, long?> since)
    {
        if (Last is not { } last)
        {
            return [];
        }

        var age = since(last) is { } at ? Math.Max(0, (_time.GetUtcNow().ToUnixTimeMilliseconds() - at) / 1000.0) : 0;
        return [new Measurement<double>(age)];
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Counting the store for the gauges failed; they keep their last values until a count succeeds")]
    private static partial void LogSamplingFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Counting the store for the gauges works again")]
    private static partial void LogSamplingResumed(ILogger logger);
}

/// <summary>One count of the store and the time it was taken.</summary>
public sealed record StoreSample(OperationalCounts Counts, DateTimeOffset TakenAt);
