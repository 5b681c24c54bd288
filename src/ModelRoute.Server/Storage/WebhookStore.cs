using Dapper;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Server.Storage;

/// <summary>
/// Webhook endpoints, account secrets and the delivery outbox's reads, on either engine (<see cref="ISqlDialect"/>);
/// the claims and attempts each engine writes its own way are its <see cref="IWebhookOutbox"/>.
/// </summary>
public sealed class WebhookStore : IWebhookStore
{
    private readonly ISqlDialect _db;
    private readonly IWebhookOutbox _outbox;
    private readonly IChangeBroadcast _broadcast;
    private readonly string _listEndpointsSql;
    private readonly string _listDeliveriesSql;
    private readonly string _listAttemptsSql;
    private readonly string _purgeTestAttemptsSql;

    /// <param name="broadcast">Wakes other nodes' delivery workers for deliveries due now; none for one node.</param>
    public WebhookStore(ISqlDialect dialect, IWebhookOutbox outbox, IChangeBroadcast? broadcast = null)
    {
        _db = dialect;
        _outbox = outbox;
        _broadcast = broadcast ?? NoChangeBroadcast.Instance;
        var text = dialect.NullableText;
        _listEndpointsSql = $"SELECT * FROM webhook_endpoints WHERE account_id = @accountId AND (@before{text} IS NULL OR id < @before) ORDER BY id DESC LIMIT @limit";
        _listDeliveriesSql = $"""
            SELECT * FROM webhook_deliveries
            WHERE account_id = @accountId
              AND (@endpointId{text} IS NULL OR endpoint_id = @endpointId)
              AND (@executionId{text} IS NULL OR execution_id = @executionId)
              AND (@before{text} IS NULL OR id < @before)
            ORDER BY id DESC LIMIT @limit
            """;
        _listAttemptsSql =
            $"""
            SELECT id, delivery_id, attempted_at, status_code, latency_ms, error, response_body,
                CAST(CASE WHEN response_body_truncated THEN 1 ELSE 0 END AS BIGINT) AS response_body_truncated
            FROM webhook_attempts WHERE {dialect.InList("delivery_id", "Ids")} ORDER BY id
            """;
        _purgeTestAttemptsSql = $"DELETE FROM webhook_attempts WHERE {dialect.InList("delivery_id", "Ids")}";
    }

    public Task<string?> GetDefaultSecretAsync(string accountId, CancellationToken cancellationToken) =>
        _db.WriteAsync<string?>(async (c, tx) =>
        {
            var secret = await c.QueryFirstOrDefaultPreparedAsync<string?>(
                "UPDATE accounts SET webhook_secret = COALESCE(webhook_secret, @New) WHERE id = @accountId RETURNING webhook_secret",
                new { accountId, New = WebhookSecrets.New() },
                tx);
            return (secret, true);
        }, cancellationToken);

    public Task CreateEndpointAsync(WebhookEndpoint e, string secret, CancellationToken cancellationToken) =>
        _db.WriteAsync(async (c, tx) =>
        {
            await c.ExecutePreparedAsync(
                """
                INSERT INTO webhook_endpoints (id, account_id, url, events, thin, description, secret, status, created_at)
                VALUES (@Id, @AccountId, @Url, @Events, @Thin, @Description, @secret, 'enabled', @CreatedAt)
                """,
                new { e.Id, e.AccountId, e.Url, Events = JsonSerializer.Serialize(e.Events), Thin = e.Thin ? 1L : 0L, e.Description, secret, CreatedAt = e.CreatedAt.ToUnixTimeMilliseconds() },
                tx);
            return (0, true);
        }, cancellationToken);

    public Task<WebhookEndpoint?> GetEndpointAsync(string accountId, string id, CancellationToken cancellationToken) =>
        _db.ReadAsync(async c => (await c.QueryFirstOrDefaultAsync<EndpointRow>(
            "SELECT * FROM webhook_endpoints WHERE id = @id AND account_id = @accountId", new { id, accountId }))?.ToEndpoint(), cancellationToken);

    public Task<IReadOnlyList<WebhookEndpoint>> ListEndpointsAsync(string accountId, string? before, int limit, CancellationToken cancellationToken) =>
        _db.ReadAsync<IReadOnlyList<WebhookEndpoint>>(async c =>
            [.. (await c.QueryAsync<EndpointRow>(_listEndpointsSql, new { accountId, before, limit })).Select(r => r.ToEndpoint())],
            cancellationToken);

    public Task<bool> DeleteEndpointAsync(string accountId, string id, DateTimeOffset now, CancellationToken cancellationToken) =>
        _db.WriteAsync(async (c, tx) =>
        {
            if (await c.ExecutePreparedAsync("DELETE FROM webhook_endpoints WHERE id = @id AND account_id = @accountId", new { id, accountId }, tx) == 0)
            {
                return (false, false);
            }

            await _outbox.FailPendingAsync(c, tx, id, "The endpoint was deleted.", now.ToUnixTimeMilliseconds());
            return (true, true);
        }, cancellationToken);

    public Task<WebhookEndpoint?> EnableEndpointAsync(string accountId, string id, CancellationToken cancellationToken) =>
        _db.WriteAsync(async (c, tx) =>
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

    public Task<WebhookEndpoint?> RotateSecretAsync(string accountId, string id, string secret, DateTimeOffset previousExpiresAt, CancellationToken cancellationToken) =>
        _db.WriteAsync(async (c, tx) =>
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

    public Task<IReadOnlyList<WebhookDelivery>> ClaimDueAsync(string owner, int max, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken) =>
        _outbox.ClaimDueAsync(owner, max, now, leaseUntil, cancellationToken);

    public async Task<IReadOnlyList<string>?> SigningSecretsAsync(WebhookDelivery delivery, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (delivery.EndpointId is null)
        {
            // Accounts get their secret at creation; only accounts older than webhooks need the write.
            var secret = await _db.ReadAsync(
                c => c.QueryFirstOrDefaultAsync<string?>("SELECT webhook_secret FROM accounts WHERE id = @AccountId", new { delivery.AccountId }),
                cancellationToken) ?? await GetDefaultSecretAsync(delivery.AccountId, cancellationToken);
            return secret is null ? null : [secret];
        }

        // Read at the moment of sending, so that a rotation or a disable is seen by the next delivery.
        if (await _outbox.ReadEndpointSecretsAsync(delivery.EndpointId, cancellationToken) is not { } endpoint)
        {
            return null;
        }

        return endpoint.PreviousSecret is { } previous && endpoint.PreviousSecretExpiresAt > now.ToUnixTimeMilliseconds()
            ? [endpoint.Secret, previous]
            : [endpoint.Secret];
    }

    public Task RecordAttemptAsync(AttemptResult result, CancellationToken cancellationToken) => _outbox.RecordAttemptAsync(result, cancellationToken);

    public Task<WebhookDelivery?> GetDeliveryAsync(string accountId, string id, CancellationToken cancellationToken) =>
        _db.ReadAsync(async c => (await c.QueryFirstOrDefaultAsync<DeliveryRow>(
            "SELECT * FROM webhook_deliveries WHERE id = @id AND account_id = @accountId", new { id, accountId }))?.ToDelivery(), cancellationToken);

    public Task<IReadOnlyList<WebhookDelivery>> ListDeliveriesAsync(string accountId, string? endpointId, string? executionId, string? before, int limit, CancellationToken cancellationToken) =>
        _db.ReadAsync<IReadOnlyList<WebhookDelivery>>(async c =>
            [.. (await c.QueryAsync<DeliveryRow>(_listDeliveriesSql, new { accountId, endpointId, executionId, before, limit })).Select(r => r.ToDelivery())],
            cancellationToken);

    public Task<IReadOnlyList<WebhookAttempt>> ListAttemptsAsync(IReadOnlyCollection<string> deliveryIds, CancellationToken cancellationToken) =>
        deliveryIds.Count == 0
            ? Task.FromResult<IReadOnlyList<WebhookAttempt>>([])
            : _db.ReadAsync<IReadOnlyList<WebhookAttempt>>(async c =>
                [.. (await c.QueryAsync<AttemptRow>(_listAttemptsSql, new { Ids = deliveryIds.ToArray() })).Select(a => a.ToAttempt())],
                cancellationToken);

    public async Task<WebhookDelivery?> CreateTestDeliveryAsync(
        string accountId, string endpointId, string deliveryId, string eventId, string payload, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var delivery = await _db.WriteAsync(async (c, tx) =>
        {
            var row = await c.QueryFirstOrDefaultPreparedAsync<DeliveryRow>(
                """
                INSERT INTO webhook_deliveries (id, event_id, account_id, execution_id, endpoint_id, url, event_type, payload, status, next_attempt_at, created_at, updated_at)
                SELECT @deliveryId, @eventId, account_id, NULL, id, url, @Type, @payload, 'pending', @Now, @Now, @Now
                FROM webhook_endpoints WHERE id = @endpointId AND account_id = @accountId
                RETURNING *
                """,
                new { deliveryId, eventId, accountId, endpointId, payload, Type = WebhookEventTypes.Test, Now = now.ToUnixTimeMilliseconds() },
                tx);
            return (row?.ToDelivery(), row is not null);
        }, cancellationToken);
        if (delivery is not null)
        {
            _broadcast.WebhooksWritten(); // Due now: any node's idle worker may take it.
        }

        return delivery;
    }

    public async Task<WebhookDelivery?> RedeliverAsync(string accountId, string deliveryId, string newId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var delivery = await _db.WriteAsync(async (c, tx) =>
        {
            var row = await c.QueryFirstOrDefaultPreparedAsync<DeliveryRow>(
                """
                INSERT INTO webhook_deliveries (id, event_id, account_id, execution_id, endpoint_id, url, event_type, payload, status, next_attempt_at, created_at, updated_at, trace_parent)
                SELECT @newId, event_id, account_id, execution_id, endpoint_id, url, event_type, payload, 'pending', @Now, @Now, @Now, trace_parent
                FROM webhook_deliveries WHERE id = @deliveryId AND account_id = @accountId
                RETURNING *
                """,
                new { newId, deliveryId, accountId, Now = now.ToUnixTimeMilliseconds() },
                tx);
            return (row?.ToDelivery(), row is not null);
        }, cancellationToken);
        if (delivery is not null)
        {
            // Due now: wake an idle delivery worker on whichever node.
            _broadcast.WebhooksWritten();
        }

        return delivery;
    }

    /// <summary>
    /// Finished test deliveries are found through the execution_id index (they have none) and deleted in the same
    /// statement that names them; their attempts follow in the same transaction.
    /// </summary>
    public Task<int> PurgeTestDeliveriesAsync(DateTimeOffset endedBefore, int max, CancellationToken cancellationToken) =>
        _db.WriteAsync(async (c, tx) =>
        {
            var ids = (await c.QueryPreparedAsync<string>(
                """
                DELETE FROM webhook_deliveries WHERE id IN (
                    SELECT id FROM webhook_deliveries
                    WHERE execution_id IS NULL AND event_type = @Type AND status <> 'pending' AND completed_at < @Before
                    LIMIT @max)
                RETURNING id
                """,
                new { Type = WebhookEventTypes.Test, Before = endedBefore.ToUnixTimeMilliseconds(), max },
                tx)).ToArray();
            if (ids.Length > 0)
            {
                await c.ExecutePreparedAsync(_purgeTestAttemptsSql, new { Ids = ids }, tx);
            }

            return (ids.Length, true);
        }, cancellationToken);
}

/// <summary>A webhook_attempts row as read (response_body_truncated read as 0/1 on both engines).</summary>
internal sealed class AttemptRow
{
    public string Id { get; set; } = "";
    public string DeliveryId { get; set; } = "";
    public long AttemptedAt { get; set; }
    public long? StatusCode { get; set; }
    public long LatencyMs { get; set; }
    public string? Error { get; set; }
    public string? ResponseBody { get; set; }
    public long ResponseBodyTruncated { get; set; }

    public WebhookAttempt ToAttempt() => new(
        Id, DeliveryId, DateTimeOffset.FromUnixTimeMilliseconds(AttemptedAt), (int?)StatusCode, LatencyMs, Error, ResponseBody, ResponseBodyTruncated != 0);
}
