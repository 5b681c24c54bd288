using System.Data.Common;
using Dapper;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Server.Storage.Sqlite;

/// <summary>The delivery outbox's claims and attempts on SQLite: each one write on the single writer.</summary>
public sealed class SqliteWebhookOutbox(SqliteDatabase db, IdGenerator ids) : IWebhookOutbox
{
    /// <summary>Leases due deliveries to a worker (<c>OR FAIL</c>: no statement journal, see <see cref="SqliteExecutionStore.MoveSql"/>).</summary>
    internal const string ClaimSql = """
        UPDATE OR FAIL webhook_deliveries SET lease_owner = @owner, lease_expires_at = @Until
        WHERE id IN (
            SELECT id FROM webhook_deliveries
            WHERE status = 'pending' AND next_attempt_at <= @Now
              AND (lease_expires_at IS NULL OR lease_expires_at <= @Now)
            ORDER BY next_attempt_at
            LIMIT @max)
        RETURNING *
        """;

    /// <summary>Ends a leased delivery's attempt (<c>OR FAIL</c>: see <see cref="SqliteExecutionStore.MoveSql"/>).</summary>
    internal const string RecordAttemptSql = """
        UPDATE OR FAIL webhook_deliveries SET
            status = @status, attempts = attempts + 1, updated_at = @now,
            next_attempt_at = COALESCE(@Next, next_attempt_at),
            last_status_code = @StatusCode, last_error = @Error,
            completed_at = CASE WHEN @status = 'pending' THEN NULL ELSE @now END,
            lease_owner = NULL, lease_expires_at = NULL
        WHERE id = @DeliveryId AND lease_owner = @Owner AND status = 'pending'
        RETURNING id, endpoint_id
        """;

    private const string FailPendingSql = """
        UPDATE webhook_deliveries SET status = 'failed', last_error = @reason, completed_at = @now, updated_at = @now, lease_owner = NULL, lease_expires_at = NULL
        WHERE endpoint_id = @endpointId AND status = 'pending'
        """;

    public Task<IReadOnlyList<WebhookDelivery>> ClaimDueAsync(string owner, int max, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken) =>
        db.WriteAsync<IReadOnlyList<WebhookDelivery>>(async (c, tx) =>
        {
            var rows = await c.QueryPreparedAsync<DeliveryRow>(
                ClaimSql,
                new { owner, max, Now = now.ToUnixTimeMilliseconds(), Until = leaseUntil.ToUnixTimeMilliseconds() },
                tx);
            return ([.. rows.Select(r => r.ToDelivery())], true);
        }, cancellationToken);

    public Task<EndpointSecrets?> ReadEndpointSecretsAsync(string endpointId, CancellationToken cancellationToken) =>
        db.ReadAsync(async c => await c.QueryFirstOrDefaultAsync<EndpointRow>(
                "SELECT * FROM webhook_endpoints WHERE id = @endpointId AND status = 'enabled'", new { endpointId }) is { } row
                ? new EndpointSecrets(row.Secret, row.PreviousSecret, row.PreviousSecretExpiresAt)
                : null,
            cancellationToken);

    public Task FailPendingAsync(DbConnection connection, DbTransaction transaction, string endpointId, string reason, long now) =>
        connection.ExecutePreparedAsync(FailPendingSql, new { endpointId, reason, now }, transaction);

    public Task RecordAttemptAsync(AttemptResult r, CancellationToken cancellationToken) =>
        db.WriteAsync(async (c, tx) =>
        {
            var now = r.AttemptedAt.ToUnixTimeMilliseconds();
            var status = r.Succeeded ? DeliveryStatuses.Succeeded : r.NextAttemptAt is null ? DeliveryStatuses.Failed : DeliveryStatuses.Pending;
            var endpointId = await c.QueryFirstOrDefaultPreparedAsync<(string Id, string? EndpointId)>(
                RecordAttemptSql,
                new { status, now, Next = r.NextAttemptAt?.ToUnixTimeMilliseconds(), r.StatusCode, r.Error, r.DeliveryId, r.Owner },
                tx);
            if (endpointId.Id is null)
            {
                return (0, false); // Another worker took it over: its own attempt counts.
            }

            await c.ExecutePreparedAsync(
                """
                INSERT INTO webhook_attempts (id, delivery_id, attempted_at, status_code, latency_ms, error, response_body, response_body_truncated)
                VALUES (@Id, @DeliveryId, @now, @StatusCode, @LatencyMs, @Error, @ResponseBody, @Truncated)
                """,
                new { Id = ids.New("wha"), r.DeliveryId, now, r.StatusCode, r.LatencyMs, r.Error, r.ResponseBody, Truncated = r.ResponseBodyTruncated ? 1L : 0L },
                tx);
            if (endpointId.EndpointId is { } endpoint)
            {
                if (r.DisableEndpointReason is not null)
                {
                    await FailPendingAsync(c, tx, endpoint, "The endpoint was disabled: " + r.DisableEndpointReason, now);
                }

                await c.ExecutePreparedAsync(
                    r.Succeeded
                        ? "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = @endpoint AND failing_since IS NOT NULL"
                        : r.DisableEndpointReason is not null
                            ? "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = @Reason WHERE id = @endpoint"
                            : "UPDATE webhook_endpoints SET failing_since = @now WHERE id = @endpoint AND failing_since IS NULL",
                    new { endpoint, now, Reason = r.DisableEndpointReason },
                    tx);
            }

            return (0, true);
        }, cancellationToken);
}
