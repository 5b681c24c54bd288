namespace ModelRoute.Server.Storage;

/// <summary>
/// Store-wide counts for the operator's gauges (docs/observability.md#store-gauges), read now and then by
/// <c>StoreGauges</c>, never per request or per scrape. Each read walks only unfinished work (partial indexes), never
/// the ended executions or delivered webhooks, however many there are.
/// </summary>
public interface IOperationalCounts
{
    Task<OperationalCounts> CountAsync(CancellationToken cancellationToken);
}

/// <summary>
/// One reading of the store. Timestamps are unix milliseconds, null when there is nothing of the kind; ages are
/// derived from them when read, so an old hold keeps ageing between readings.
/// </summary>
/// <param name="Pending">Executions waiting for a provider (PENDING).</param>
/// <param name="Processing">Executions whose provider call runs (PROCESSING).</param>
/// <param name="AwaitingWebhook">Executions waiting for a provider's callback or poll (AWAITING_WEBHOOK).</param>
/// <param name="HeldMicros">Micro-dollars held by unfinished executions.</param>
/// <param name="OldestHoldAt">When the oldest unfinished execution that holds money was created.</param>
/// <param name="OutboxBacklog">Webhook deliveries not yet delivered nor given up (pending).</param>
/// <param name="OldestDeliveryAt">When the oldest pending delivery was created.</param>
public sealed record OperationalCounts(
    long Pending,
    long Processing,
    long AwaitingWebhook,
    long HeldMicros,
    long? OldestHoldAt,
    long OutboxBacklog,
    long? OldestDeliveryAt);
