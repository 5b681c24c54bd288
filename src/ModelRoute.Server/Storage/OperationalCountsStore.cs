using Dapper;

namespace ModelRoute.Server.Storage;

/// <summary>
/// <see cref="IOperationalCounts"/> on either engine (<see cref="ISqlDialect"/>): two reads, each walking a partial
/// index of unfinished rows only, so their cost follows the work in hand, not the history kept (docs/observability.md#store-gauges).
/// </summary>
public sealed class OperationalCountsStore(ISqlDialect dialect) : IOperationalCounts
{
    /// <summary>
    /// The predicate of <c>ix_executions_open_expiry</c> as SQLite's migration spells it: SQLite uses a partial index only
    /// for a WHERE that repeats its predicate; PostgreSQL proves its own <c>IN</c> form from the same text.
    /// </summary>
    internal const string ExecutionsSql =
        """
        SELECT status, COUNT(*), CAST(COALESCE(SUM(held_micros), 0) AS BIGINT), MIN(CASE WHEN held_micros > 0 THEN created_at END)
        FROM executions
        WHERE (status = 'PENDING' OR status = 'PROCESSING' OR status = 'AWAITING_WEBHOOK')
        GROUP BY status
        """;

    /// <summary>Pending deliveries, from <c>ix_webhook_deliveries_due</c> (its predicate).</summary>
    internal const string OutboxSql = "SELECT COUNT(*), MIN(created_at) FROM webhook_deliveries WHERE status = 'pending'";

    public Task<OperationalCounts> CountAsync(CancellationToken cancellationToken) =>
        dialect.ReadAsync(async connection =>
        {
            long pending = 0, processing = 0, awaiting = 0, held = 0;
            long? oldestHold = null;
            foreach (var (status, count, heldMicros, oldest) in
                await connection.QueryAsync<(string, long, long, long?)>(new CommandDefinition(ExecutionsSql, cancellationToken: cancellationToken)))
            {
                if (status == "PENDING")
                {
                    pending = count;
                }
                else if (status == "PROCESSING")
                {
                    processing = count;
                }
                else
                {
                    awaiting = count;
                }

                held += heldMicros;
                oldestHold = oldest is { } at && (oldestHold is null || at < oldestHold) ? at : oldestHold;
            }

            var (backlog, oldestDelivery) = await connection.QuerySingleAsync<(long, long?)>(
                new CommandDefinition(OutboxSql, cancellationToken: cancellationToken));
            return new OperationalCounts(pending, processing, awaiting, held, oldestHold, backlog, oldestDelivery);
        }, cancellationToken);
}
