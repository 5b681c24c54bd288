using System.Data.Common;
using Dapper;
using Npgsql;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Server.Storage.Postgres;

/// <summary>
/// The delivery outbox's claims and attempts on PostgreSQL: claims that skip rows another node holds, and attempts and
/// secret reads grouped, one statement for many deliveries.
/// </summary>
public sealed class PostgresWebhookOutbox(PostgresDatabase db, IdGenerator ids) : IWebhookOutbox
{
    public Task FailPendingAsync(DbConnection connection, DbTransaction transaction, string endpointId, string reason, long now) =>
        connection.ExecuteAsync(FailPendingSql, new { endpointId, reason, now }, transaction);

    // By the endpoint's index, not the whole partial index of due deliveries (see RecordAttemptsSql).
    internal const string FailPendingSql =
        """
        UPDATE webhook_deliveries SET status = 'failed', last_error = @reason, completed_at = @now, updated_at = @now, lease_owner = NULL, lease_expires_at = NULL
        WHERE endpoint_id = @endpointId AND (status || '') = 'pending'
        """;

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

    public Task<EndpointSecrets?> ReadEndpointSecretsAsync(string endpointId, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return _secretReads.RunAsync(endpointId);
    }

    // Read at the moment of sending, so a rotation or a disable is seen by the next delivery; one read serves every
    // delivery that asked while the previous read ran, where a read each cost a round trip and a statement per delivery.
    private const string SecretsSql =
        "SELECT id, secret, previous_secret, previous_secret_expires_at FROM webhook_endpoints WHERE id = ANY(@Ids) AND status = 'enabled'";

    private const int MaxSecretGroup = 256;

    private readonly PostgresBatchLane<string, EndpointSecrets?> _secretReads = db.CreateBatchLane<string, EndpointSecrets?>(
        group => ReadSecretsAsync(db, group), async alone => (await ReadSecretsAsync(db, [alone]))[0], MaxSecretGroup);

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
                @StatusCodes::integer[], @Errors::text[], @AttemptIds::text[], @LatencyMs::bigint[], @Bodies::text[], @Truncated::boolean[]) WITH ORDINALITY
                AS g(delivery_id, owner, status, now, next, status_code, error, attempt_id, latency_ms, body, truncated, ord)
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
            INSERT INTO webhook_attempts (id, delivery_id, attempted_at, status_code, latency_ms, error, response_body, response_body_truncated)
            SELECT g.attempt_id, g.delivery_id, g.now, g.status_code, g.latency_ms, g.error, g.body, g.truncated FROM given g JOIN recorded r ON r.id = g.delivery_id
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
    /// least once (docs/webhooks.md#delivery-rules), and if the database server crashed before the next flush, the attempts lost are those of
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
            Bodies = sent.Select(a => a.ResponseBody).ToArray(),
            Truncated = sent.Select(a => a.ResponseBodyTruncated).ToArray(),
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
}
