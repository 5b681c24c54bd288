using System.Text.Json;
using Dapper;
using Npgsql;
using ModelRoute.Server.Executions;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Server.Storage.Postgres;

/// <summary>Webhook endpoints and the delivery outbox on PostgreSQL, with the semantics of the SQLite store.</summary>
public sealed class PostgresWebhookStore(PostgresDatabase db, PostgresNotifier notifier, IdGenerator ids) : IWebhookStore
{
    public Task<string?> GetDefaultSecretAsync(string accountId, CancellationToken cancellationToken) =>
        db.WriteAsync<string?>(async (c, tx) =>
        {
            var secret = await c.QueryFirstOrDefaultAsync<string?>(
                "UPDATE accounts SET webhook_secret = COALESCE(webhook_secret, @New) WHERE id = @accountId RETURNING webhook_secret",
                new { accountId, New = WebhookSigner.NewSecret() },
                tx);
            return (secret, true);
        }, cancellationToken);

    public Task CreateEndpointAsync(WebhookEndpoint e, string secret, CancellationToken cancellationToken) =>
        db.WriteAsync(async (c, tx) =>
        {
            await c.ExecuteAsync(
                """
                INSERT INTO webhook_endpoints (id, account_id, url, events, thin, description, secret, status, created_at)
                VALUES (@Id, @AccountId, @Url, @Events, CASE WHEN @Thin THEN 1 ELSE 0 END, @Description, @secret, 'enabled', @CreatedAt)
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
                "SELECT * FROM webhook_endpoints WHERE account_id = @accountId AND (@before::text IS NULL OR id < @before) ORDER BY id DESC LIMIT @limit",
                new { accountId, before, limit })).Select(r => r.ToEndpoint())],
            cancellationToken);

    public Task<bool> DeleteEndpointAsync(string accountId, string id, DateTimeOffset now, CancellationToken cancellationToken) =>
        db.WriteAsync(async (c, tx) =>
        {
            if (await c.ExecuteAsync("DELETE FROM webhook_endpoints WHERE id = @id AND account_id = @accountId", new { id, accountId }, tx) == 0)
            {
                return (false, false);
            }

            await FailPendingAsync(c, tx, id, "The endpoint was deleted.", now.ToUnixTimeMilliseconds());
            return (true, true);
        }, cancellationToken);

    public Task<WebhookEndpoint?> EnableEndpointAsync(string accountId, string id, CancellationToken cancellationToken) =>
        db.WriteAsync(async (c, tx) =>
        {
            var row = await c.QueryFirstOrDefaultAsync<EndpointRow>(
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
    private static Task FailPendingAsync(NpgsqlConnection c, NpgsqlTransaction tx, string endpointId, string reason, long now) =>
        c.ExecuteAsync(FailPendingSql, new { endpointId, reason, now }, tx);

    // By the endpoint's index, not the whole partial index of due deliveries (see RecordAttemptSql).
    internal const string FailPendingSql =
        """
        UPDATE webhook_deliveries SET status = 'failed', last_error = @reason, completed_at = @now, updated_at = @now, lease_owner = NULL, lease_expires_at = NULL
        WHERE endpoint_id = @endpointId AND (status || '') = 'pending'
        """;

    public Task<WebhookEndpoint?> RotateSecretAsync(string accountId, string id, string secret, DateTimeOffset previousExpiresAt, CancellationToken cancellationToken) =>
        db.WriteAsync(async (c, tx) =>
        {
            var row = await c.QueryFirstOrDefaultAsync<EndpointRow>(
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

    public async Task<IReadOnlyList<WebhookDelivery>> ClaimDueAsync(string owner, int max, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken)
    {
        // Walks the due index in order, whatever the statistics say (see PostgresDatabase.ClaimAsync).
        var rows = await db.ClaimAsync<DeliveryRow>(
            PostgresDatabase.Statement(
                """
                UPDATE webhook_deliveries SET lease_owner = @owner, lease_expires_at = @Until
                WHERE id IN (
                    SELECT id FROM webhook_deliveries
                    WHERE status = 'pending' AND next_attempt_at <= @Now
                      AND (lease_expires_at IS NULL OR lease_expires_at <= @Now)
                    ORDER BY next_attempt_at
                    LIMIT @max
                    FOR UPDATE SKIP LOCKED)
                RETURNING *
                """,
                new { owner, max, Now = now.ToUnixTimeMilliseconds(), Until = leaseUntil.ToUnixTimeMilliseconds() }),
            cancellationToken);
        return [.. rows.Select(r => r.ToDelivery())];
    }

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

        cancellationToken.ThrowIfCancellationRequested();
        var row = await _secretReads.RunAsync(delivery.EndpointId);
        if (row is null)
        {
            return null;
        }

        return row.PreviousSecret is { } previous && row.PreviousSecretExpiresAt > now.ToUnixTimeMilliseconds()
            ? [row.Secret, previous]
            : [row.Secret];
    }

    // Read at the moment of sending, so a rotation or a disable is seen by the next delivery; one read serves every
    // delivery that asked while the previous read ran, where a read each cost a round trip and a statement per delivery.
    private const string SecretsSql =
        "SELECT id, secret, previous_secret, previous_secret_expires_at FROM webhook_endpoints WHERE id = ANY(@Ids) AND status = 'enabled'";

    private const int MaxSecretGroup = 256;

    private readonly PostgresBatchLane<string, EndpointSecrets?> _secretReads = db.CreateBatchLane<string, EndpointSecrets?>(
        group => ReadSecretsAsync(db, group), async alone => (await ReadSecretsAsync(db, [alone]))[0], MaxSecretGroup);

    internal sealed record EndpointSecrets(string Secret, string? PreviousSecret, long? PreviousSecretExpiresAt);

    internal static Task<IReadOnlyList<EndpointSecrets?>> ReadSecretsAsync(PostgresDatabase db, IReadOnlyList<string> endpointIds) =>
        db.ReadAsync<IReadOnlyList<EndpointSecrets?>>(async c =>
        {
            await using var batch = new NpgsqlBatch(c) { BatchCommands = { PostgresDatabase.Statement(SecretsSql, new { Ids = endpointIds.Distinct().ToArray() }) } };
            await using var reader = await batch.ExecuteReaderAsync(CancellationToken.None);
            var found = new Dictionary<string, EndpointSecrets>(StringComparer.Ordinal);
            while (await reader.ReadAsync(CancellationToken.None))
            {
                found[reader.GetString(0)] = new EndpointSecrets(
                    reader.GetString(1),
                    await reader.IsDBNullAsync(2, CancellationToken.None) ? null : reader.GetString(2),
                    await reader.IsDBNullAsync(3, CancellationToken.None) ? null : reader.GetInt64(3));
            }

            return [.. endpointIds.Select(id => found.GetValueOrDefault(id))];
        }, CancellationToken.None);

    // The attempts recorded meanwhile, as one statement: each delivery's next state and its attempt row (none if the
    // lease was lost), and the endpoints whose latest recorded attempt in the group succeeded marked healthy again.
    // (status || ''): a plain "status = 'pending'" lets the planner scan the whole partial ix_webhook_deliveries_due in
    // place of the primary key when its statistics predate a backlog of due deliveries (see PostgresExecutionStore.UpdateSql).
    // Only a change of health writes (and locks) an endpoint's row: deliveries to one endpoint must not queue behind
    // each other's commits to say it is still healthy.
    internal const string RecordAttemptsSql =
        """
        WITH given AS (
            SELECT * FROM unnest(@DeliveryIds::text[], @Owners::text[], @Statuses::text[], @Nows::bigint[], @Nexts::bigint[],
                @StatusCodes::integer[], @Errors::text[], @AttemptIds::text[], @LatencyMs::bigint[]) WITH ORDINALITY
                AS g(delivery_id, owner, status, now, next, status_code, error, attempt_id, latency_ms, ord)
        ), recorded AS (
            UPDATE webhook_deliveries d SET
                status = g.status, attempts = d.attempts + 1, updated_at = g.now,
                next_attempt_at = COALESCE(g.next, d.next_attempt_at),
                last_status_code = g.status_code, last_error = g.error,
                completed_at = CASE WHEN g.status = 'pending' THEN NULL ELSE g.now END,
                lease_owner = NULL, lease_expires_at = NULL
            FROM given g
            WHERE d.id = g.delivery_id AND d.lease_owner = g.owner AND (d.status || '') = 'pending'
            RETURNING d.id, d.endpoint_id, g.status, g.ord
        ), attempt AS (
            INSERT INTO webhook_attempts (id, delivery_id, attempted_at, status_code, latency_ms, error)
            SELECT g.attempt_id, g.delivery_id, g.now, g.status_code, g.latency_ms, g.error FROM given g JOIN recorded r ON r.id = g.delivery_id
        ), healthy AS (
            SELECT endpoint_id FROM (
                SELECT DISTINCT ON (endpoint_id) endpoint_id, status FROM recorded WHERE endpoint_id IS NOT NULL ORDER BY endpoint_id, ord DESC) latest
            WHERE status = 'succeeded'
        ), cleared AS (
            UPDATE webhook_endpoints SET failing_since = NULL
            WHERE id IN (SELECT endpoint_id FROM healthy) AND failing_since IS NOT NULL
        )
        SELECT id, endpoint_id FROM recorded
        """;

    private const int MaxAttemptGroup = 256;

    private readonly PostgresBatchLane<AttemptResult, bool> _attempts = db.CreateBatchLane<AttemptResult, bool>(
        group => RecordAttemptsAsync(db, ids, group), async alone => (await RecordAttemptsAsync(db, ids, [alone]))[0], MaxAttemptGroup);

    /// <summary>
    /// Group-committed with the other attempts recorded meanwhile (a lane of their own): one statement and one commit,
    /// so one fsync, per group of deliveries rather than per delivery.
    /// </summary>
    public Task RecordAttemptAsync(AttemptResult r, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return _attempts.RunAsync(r);
    }

    /// <summary>
    /// Which of the group's attempts were recorded (false: another worker took the delivery over, and its own attempt
    /// counts). When every attempt succeeded the statement is the whole write, in its own implicit transaction; a
    /// failure also marks its endpoint failing, or disables it and fails its pending deliveries, in the same transaction.
    /// The commit does not wait for the WAL flush (synchronous_commit off, for this transaction only): delivery is at
    /// least once (README "Delivery rules"), and if the database server crashed before the next flush, the attempts lost are those of
    /// deliveries still leased, which are sent again when the lease runs out, as after a worker's crash. The events
    /// themselves are written durably with the state changes that cause them. So a delivery's commit does not take a
    /// place in the queue of WAL flushes that every submission's 202 waits in.
    /// </summary>
    internal static async Task<IReadOnlyList<bool>> RecordAttemptsAsync(PostgresDatabase db, IdGenerator ids, IReadOnlyList<AttemptResult> group)
    {
        // A second attempt at one delivery would find the first one's lease cleared, so it is not recorded.
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var sent = group.Where(a => seen.Add(a.DeliveryId)).ToList();
        var statement = PostgresDatabase.Statement(RecordAttemptsSql, new
        {
            DeliveryIds = sent.Select(a => a.DeliveryId).ToArray(),
            Owners = sent.Select(a => a.Owner).ToArray(),
            Statuses = sent.Select(Status).ToArray(),
            Nows = sent.Select(a => a.AttemptedAt.ToUnixTimeMilliseconds()).ToArray(),
            Nexts = sent.Select(a => a.NextAttemptAt?.ToUnixTimeMilliseconds()).ToArray(),
            StatusCodes = sent.Select(a => a.StatusCode).ToArray(),
            Errors = sent.Select(a => a.Error).ToArray(),
            AttemptIds = sent.Select(_ => ids.New("wha")).ToArray(),
            LatencyMs = sent.Select(a => a.LatencyMs).ToArray(),
        });
        var allSucceeded = sent.TrueForAll(a => a.Succeeded && a.DisableEndpointReason is null);
        var recorded = await db.WriteStatementAsync(async c =>
        {
            await using var transaction = allSucceeded ? null : await c.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, CancellationToken.None);
            var endpoints = new Dictionary<string, string?>(StringComparer.Ordinal);
            await using (var batch = new NpgsqlBatch(c, transaction) { BatchCommands = { new NpgsqlBatchCommand(NoFlushWaitSql), statement } })
            await using (var reader = await batch.ExecuteReaderAsync(CancellationToken.None))
            {
                await reader.NextResultAsync(CancellationToken.None); // Past the setting's own row.
                while (await reader.ReadAsync(CancellationToken.None))
                {
                    endpoints[reader.GetString(0)] = await reader.IsDBNullAsync(1, CancellationToken.None) ? null : reader.GetString(1);
                }
            }

            if (transaction is not null)
            {
                var scope = new PostgresDatabase.GroupScope(c, transaction);
                MarkFailing(sent, endpoints, scope);
                await scope.CommitAsync();
            }

            return endpoints;
        }, CancellationToken.None);

        var first = new HashSet<string>(StringComparer.Ordinal);
        return [.. group.Select(a => first.Add(a.DeliveryId) && recorded.ContainsKey(a.DeliveryId))];
    }

    // Local to the transaction (the batch's implicit one, or the explicit one): see RecordAttemptsAsync.
    private const string NoFlushWaitSql = "SELECT set_config('synchronous_commit', 'off', true)";

    private static string Status(AttemptResult r) =>
        r.Succeeded ? DeliveryStatuses.Succeeded : r.NextAttemptAt is null ? DeliveryStatuses.Failed : DeliveryStatuses.Pending;

    /// <summary>
    /// The endpoint side of the group's recorded failures, as if each attempt were recorded alone in order: a failure
    /// marks its endpoint failing since then (over a success earlier in the group, which cleared it; a success later in
    /// the group leaves it healthy, as the statement did), and a disabling answer disables the endpoint and fails its
    /// pending deliveries.
    /// </summary>
    private static void MarkFailing(List<AttemptResult> sent, Dictionary<string, string?> recorded, PostgresDatabase.GroupScope scope)
    {
        var endsHealthy = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var r in sent)
        {
            if (recorded.GetValueOrDefault(r.DeliveryId) is { } endpoint)
            {
                endsHealthy[endpoint] = r.Succeeded;
            }
        }

        var succeededBefore = new HashSet<string>(StringComparer.Ordinal);
        foreach (var r in sent)
        {
            if (recorded.GetValueOrDefault(r.DeliveryId) is not { } endpoint)
            {
                continue;
            }

            var now = r.AttemptedAt.ToUnixTimeMilliseconds();
            if (r.Succeeded)
            {
                succeededBefore.Add(endpoint);
                continue;
            }

            if (r.DisableEndpointReason is not null)
            {
                scope.Later.Add(PostgresDatabase.Statement(FailPendingSql, new { endpointId = endpoint, reason = "The endpoint was disabled: " + r.DisableEndpointReason, now }));
                scope.LockLate(endpoint, PostgresDatabase.Statement(
                    "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = @Reason WHERE id = @Endpoint",
                    new { Endpoint = endpoint, Reason = r.DisableEndpointReason }));
            }
            else if (!endsHealthy[endpoint])
            {
                scope.LockLate(endpoint, PostgresDatabase.Statement(
                    succeededBefore.Remove(endpoint)
                        ? "UPDATE webhook_endpoints SET failing_since = @Now WHERE id = @Endpoint"
                        : "UPDATE webhook_endpoints SET failing_since = @Now WHERE id = @Endpoint AND failing_since IS NULL",
                    new { Endpoint = endpoint, Now = now }));
            }
        }
    }

    public Task<WebhookDelivery?> GetDeliveryAsync(string accountId, string id, CancellationToken cancellationToken) =>
        db.ReadAsync(async c => (await c.QueryFirstOrDefaultAsync<DeliveryRow>(
            "SELECT * FROM webhook_deliveries WHERE id = @id AND account_id = @accountId", new { id, accountId }))?.ToDelivery(), cancellationToken);

    public Task<IReadOnlyList<WebhookDelivery>> ListDeliveriesAsync(string accountId, string? endpointId, string? executionId, string? before, int limit, CancellationToken cancellationToken) =>
        db.ReadAsync<IReadOnlyList<WebhookDelivery>>(async c =>
            [.. (await c.QueryAsync<DeliveryRow>(
                """
                SELECT * FROM webhook_deliveries
                WHERE account_id = @accountId
                  AND (@endpointId::text IS NULL OR endpoint_id = @endpointId)
                  AND (@executionId::text IS NULL OR execution_id = @executionId)
                  AND (@before::text IS NULL OR id < @before)
                ORDER BY id DESC LIMIT @limit
                """,
                new { accountId, endpointId, executionId, before, limit })).Select(r => r.ToDelivery())],
            cancellationToken);

    public Task<IReadOnlyList<WebhookAttempt>> ListAttemptsAsync(IReadOnlyCollection<string> deliveryIds, CancellationToken cancellationToken) =>
        deliveryIds.Count == 0
            ? Task.FromResult<IReadOnlyList<WebhookAttempt>>([])
            : db.ReadAsync<IReadOnlyList<WebhookAttempt>>(async c =>
                [.. (await c.QueryAsync<(string Id, string DeliveryId, long AttemptedAt, long? StatusCode, long LatencyMs, string? Error)>(
                    "SELECT id, delivery_id, attempted_at, status_code, latency_ms, error FROM webhook_attempts WHERE delivery_id = ANY(@Ids) ORDER BY id",
                    new { Ids = deliveryIds.ToArray() })).Select(a => new WebhookAttempt(a.Id, a.DeliveryId, DateTimeOffset.FromUnixTimeMilliseconds(a.AttemptedAt), (int?)a.StatusCode, a.LatencyMs, a.Error))],
                cancellationToken);

    public async Task<WebhookDelivery?> RedeliverAsync(string accountId, string deliveryId, string newId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var delivery = await db.WriteAsync(async (c, tx) =>
        {
            var row = await c.QueryFirstOrDefaultAsync<DeliveryRow>(
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
        if (delivery is not null)
        {
            // Due now: wake an idle delivery worker on whichever node.
            notifier.Notify(PostgresDatabase.WebhooksPayload);
        }

        return delivery;
    }
}
