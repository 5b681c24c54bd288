using System.Text.Json;
using Dapper;
using Microsoft.Data.Sqlite;
using ModelRoute.Server.Executions;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Server.Storage.Sqlite;

public sealed class SqliteWebhookStore(SqliteDatabase db, IdGenerator ids) : IWebhookStore
{
    public Task<string?> GetDefaultSecretAsync(string accountId, CancellationToken cancellationToken) =>
        db.WriteAsync<string?>(async (c, tx) =>
        {
            var secret = await c.QueryFirstOrDefaultPreparedAsync<string?>(
                "UPDATE accounts SET webhook_secret = COALESCE(webhook_secret, @New) WHERE id = @accountId RETURNING webhook_secret",
                new { accountId, New = WebhookSigner.NewSecret() },
                tx);
            return (secret, true);
        }, cancellationToken);

    public Task CreateEndpointAsync(WebhookEndpoint e, string secret, CancellationToken cancellationToken) =>
        db.WriteAsync(async (c, tx) =>
        {
            await c.ExecutePreparedAsync(
                """
                INSERT INTO webhook_endpoints (id, account_id, url, events, thin, description, secret, status, created_at)
                VALUES (@Id, @AccountId, @Url, @Events, @Thin, @Description, @secret, 'enabled', @CreatedAt)
                """,
                new { e.Id, e.AccountId, e.Url, Events = JsonSerializer.Serialize(e.Events), e.Thin, e.Description, secret, CreatedAt = e.CreatedAt.ToUnixTimeMilliseconds() },
                tx);
            return (0, true);
        }, cancellationToken);

    public Task<WebhookEndpoint?> GetEndpointAsync(string accountId, string id, CancellationToken cancellationToken) =>
        db.ReadAsync(async c => (await c.QueryFirstOrDefaultAsync<EndpointRow>(
            "SELECT * FROM webhook_endpoints WHERE id = @id AND account_id = @accountId", new { id, accountId }))?.ToEndpoint(), cancellationToken);

    public Task<IReadOnlyList<WebhookEndpoint>> ListEndpointsAsync(string accountId, string? before, int limit, CancellationToken cancellationToken) =>
        db.ReadAsync<IReadOnlyList<WebhookEndpoint>>(async c =>
            [.. (await c.QueryAsync<EndpointRow>(
                "SELECT * FROM webhook_endpoints WHERE account_id = @accountId AND (@before IS NULL OR id < @before) ORDER BY id DESC LIMIT @limit",
                new { accountId, before, limit })).Select(r => r.ToEndpoint())],
            cancellationToken);

    public Task<bool> DeleteEndpointAsync(string accountId, string id, DateTimeOffset now, CancellationToken cancellationToken) =>
        db.WriteAsync(async (c, tx) =>
        {
            if (await c.ExecutePreparedAsync("DELETE FROM webhook_endpoints WHERE id = @id AND account_id = @accountId", new { id, accountId }, tx) == 0)
            {
                return (false, false);
            }

            await FailPendingAsync(c, tx, id, "The endpoint was deleted.", now.ToUnixTimeMilliseconds());
            return (true, true);
        }, cancellationToken);

    public Task<WebhookEndpoint?> EnableEndpointAsync(string accountId, string id, CancellationToken cancellationToken) =>
        db.WriteAsync(async (c, tx) =>
        {
            var row = await c.QueryFirstOrDefaultPreparedAsync<EndpointRow>(
                """
                UPDATE webhook_endpoints
                SET failing_since = CASE WHEN status = 'disabled' THEN NULL ELSE failing_since END,
                    status = 'enabled', disabled_reason = NULL
                WHERE id = @id AND account_id = @accountId
                RETURNING *
                """,
                new { id, accountId },
                tx);
            return (row?.ToEndpoint(), row is not null);
        }, cancellationToken);

    /// <summary>Ends the pending deliveries of an endpoint that will take no more.</summary>
    private static Task FailPendingAsync(SqliteConnection c, SqliteTransaction tx, string endpointId, string reason, long now) =>
        c.ExecutePreparedAsync(
            """
            UPDATE webhook_deliveries SET status = 'failed', last_error = @reason, completed_at = @now, updated_at = @now, lease_owner = NULL, lease_expires_at = NULL
            WHERE endpoint_id = @endpointId AND status = 'pending'
            """,
            new { endpointId, reason, now },
            tx);

    public Task<WebhookEndpoint?> RotateSecretAsync(string accountId, string id, string secret, DateTimeOffset previousExpiresAt, CancellationToken cancellationToken) =>
        db.WriteAsync(async (c, tx) =>
        {
            var row = await c.QueryFirstOrDefaultPreparedAsync<EndpointRow>(
                """
                UPDATE webhook_endpoints
                SET previous_secret = secret, previous_secret_expires_at = @Expires, secret = @secret
                WHERE id = @id AND account_id = @accountId
                RETURNING *
                """,
                new { id, accountId, secret, Expires = previousExpiresAt.ToUnixTimeMilliseconds() },
                tx);
            return (row?.ToEndpoint(), row is not null);
        }, cancellationToken);

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

    public Task<IReadOnlyList<WebhookDelivery>> ClaimDueAsync(string owner, int max, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken) =>
        db.WriteAsync<IReadOnlyList<WebhookDelivery>>(async (c, tx) =>
        {
            var rows = await c.QueryPreparedAsync<DeliveryRow>(
                ClaimSql,
                new { owner, max, Now = now.ToUnixTimeMilliseconds(), Until = leaseUntil.ToUnixTimeMilliseconds() },
                tx);
            return ([.. rows.Select(r => r.ToDelivery())], true);
        }, cancellationToken);

    public async Task<IReadOnlyList<string>?> SigningSecretsAsync(WebhookDelivery delivery, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (delivery.EndpointId is null)
        {
            // Accounts get their secret at creation; only accounts older than webhooks need the write.
            var secret = await db.ReadAsync(
                c => c.QueryFirstOrDefaultAsync<string?>("SELECT webhook_secret FROM accounts WHERE id = @AccountId", new { delivery.AccountId }),
                cancellationToken) ?? await GetDefaultSecretAsync(delivery.AccountId, cancellationToken);
            return secret is null ? null : [secret];
        }

        return await db.ReadAsync<IReadOnlyList<string>?>(async c =>
            {
                var row = await c.QueryFirstOrDefaultAsync<EndpointRow>(
                    "SELECT * FROM webhook_endpoints WHERE id = @EndpointId AND status = 'enabled'", new { delivery.EndpointId });
                if (row is null)
                {
                    return null;
                }

                return row.PreviousSecret is { } previous && row.PreviousSecretExpiresAt > now.ToUnixTimeMilliseconds()
                    ? [row.Secret, previous]
                    : [row.Secret];
            }, cancellationToken);
    }

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
                "INSERT INTO webhook_attempts (id, delivery_id, attempted_at, status_code, latency_ms, error) VALUES (@Id, @DeliveryId, @now, @StatusCode, @LatencyMs, @Error)",
                new { Id = ids.New("wha"), r.DeliveryId, now, r.StatusCode, r.LatencyMs, r.Error },
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

    public Task<WebhookDelivery?> GetDeliveryAsync(string accountId, string id, CancellationToken cancellationToken) =>
        db.ReadAsync(async c => (await c.QueryFirstOrDefaultAsync<DeliveryRow>(
            "SELECT * FROM webhook_deliveries WHERE id = @id AND account_id = @accountId", new { id, accountId }))?.ToDelivery(), cancellationToken);

    public Task<IReadOnlyList<WebhookDelivery>> ListDeliveriesAsync(string accountId, string? endpointId, string? executionId, string? before, int limit, CancellationToken cancellationToken) =>
        db.ReadAsync<IReadOnlyList<WebhookDelivery>>(async c =>
            [.. (await c.QueryAsync<DeliveryRow>(
                """
                SELECT * FROM webhook_deliveries
                WHERE account_id = @accountId
                  AND (@endpointId IS NULL OR endpoint_id = @endpointId)
                  AND (@executionId IS NULL OR execution_id = @executionId)
                  AND (@before IS NULL OR id < @before)
                ORDER BY id DESC LIMIT @limit
                """,
                new { accountId, endpointId, executionId, before, limit })).Select(r => r.ToDelivery())],
            cancellationToken);

    public Task<IReadOnlyList<WebhookAttempt>> ListAttemptsAsync(IReadOnlyCollection<string> deliveryIds, CancellationToken cancellationToken) =>
        deliveryIds.Count == 0
            ? Task.FromResult<IReadOnlyList<WebhookAttempt>>([])
            : db.ReadAsync<IReadOnlyList<WebhookAttempt>>(async c =>
                [.. (await c.QueryAsync<(string Id, string DeliveryId, long AttemptedAt, long? StatusCode, long LatencyMs, string? Error)>(
                    "SELECT id, delivery_id, attempted_at, status_code, latency_ms, error FROM webhook_attempts WHERE delivery_id IN @deliveryIds ORDER BY id",
                    new { deliveryIds })).Select(a => new WebhookAttempt(a.Id, a.DeliveryId, DateTimeOffset.FromUnixTimeMilliseconds(a.AttemptedAt), (int?)a.StatusCode, a.LatencyMs, a.Error))],
                cancellationToken);

    public Task<WebhookDelivery?> RedeliverAsync(string accountId, string deliveryId, string newId, DateTimeOffset now, CancellationToken cancellationToken) =>
        db.WriteAsync(async (c, tx) =>
        {
            var row = await c.QueryFirstOrDefaultPreparedAsync<DeliveryRow>(
                """
                INSERT INTO webhook_deliveries (id, event_id, account_id, execution_id, endpoint_id, url, event_type, payload, status, next_attempt_at, created_at, updated_at)
                SELECT @newId, event_id, account_id, execution_id, endpoint_id, url, event_type, payload, 'pending', @Now, @Now, @Now
                FROM webhook_deliveries WHERE id = @deliveryId AND account_id = @accountId
                RETURNING *
                """,
                new { newId, deliveryId, accountId, Now = now.ToUnixTimeMilliseconds() },
                tx);
            return (row?.ToDelivery(), row is not null);
        }, cancellationToken);
}
