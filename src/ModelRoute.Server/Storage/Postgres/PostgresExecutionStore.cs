using Dapper;
using Microsoft.Extensions.Options;
using ModelRoute.Server.Executions;
using ModelRoute.Server.Hosting;
using ModelRoute.Server.Webhooks;
using Npgsql;

namespace ModelRoute.Server.Storage.Postgres;

/// <summary>
/// Executions, holds and the outbox on PostgreSQL, with the semantics of the SQLite store. Every
/// state move is one conditional UPDATE; PostgreSQL re-checks its WHERE against the latest row
/// version after waiting for a concurrent writer, so a terminal execution never changes again.
/// Submissions and moves are group-committed (<see cref="PostgresDatabase.WriteGroupedAsync"/>), and
/// after each commit <see cref="PostgresNotifier"/> tells the other nodes.
/// </summary>
public sealed class PostgresExecutionStore(
    PostgresDatabase db,
    PostgresNotifier notifier,
    IdGenerator ids,
    ExecutionChanges changes,
    IOptions<ModelRouteOptions> options,
    TimeProvider time,
    Routing.NodeIdentity? node = null,
    WebhookHandoff? handoff = null) : IExecutionStore
{
    private const string NonTerminalList = "('PENDING', 'PROCESSING', 'AWAITING_WEBHOOK')";

    // One statement: lock the account if it can cover the hold, insert the execution (nothing on an
    // idempotency conflict), place the hold, and write its ledger entry and the outbox event. The hold
    // is only placed for a row actually inserted, so a submission that inserts nothing changes nothing
    // (which WriteGroupedAsync requires). FOR UPDATE re-checks the balance against the newest row version.
    private const string SubmitSql =
        """
        WITH account AS (
            SELECT id FROM accounts
            WHERE id = @AccountId AND balance_micros - held_micros >= @HoldMicros
            FOR UPDATE
        ), created AS (
            INSERT INTO executions (id, account_id, model, status, idempotency_key, request_hash, input,
                estimated_micros, held_micros, price, webhook_url, webhook_events, metadata, timeout_seconds,
                max_cost_micros, created_at, updated_at, expires_at, next_attempt_at)
            SELECT @Id, @AccountId, @Model, 'PENDING', @IdempotencyKey, @RequestHash, @Input,
                @EstimatedMicros, @HoldMicros, @Price, @WebhookUrl, @WebhookEvents, @Metadata, @TimeoutSeconds,
                @MaxCostMicros, @Now, @Now, @ExpiresAt, @Now
            FROM account
            ON CONFLICT (account_id, idempotency_key) DO NOTHING
            RETURNING account_id
        ), held AS (
            UPDATE accounts SET held_micros = accounts.held_micros + @HoldMicros
            FROM created
            WHERE accounts.id = created.account_id
            RETURNING accounts.balance_micros, accounts.held_micros
        ), ledger AS (
            INSERT INTO ledger_entries (id, account_id, execution_id, kind, amount_micros, balance_micros, held_micros, created_at)
            SELECT @LedgerId, @AccountId, @Id, @LedgerKind, @HoldMicros, balance_micros, held_micros, @Now FROM held
        ), event AS (
            INSERT INTO execution_events (id, execution_id, account_id, type, status, created_at)
            SELECT @EventId, @Id, @AccountId, @EventType, 'PENDING', @Now FROM created
        )
        SELECT true FROM created
        """;

    public async Task<SubmitOutcome> SubmitAsync(NewExecution x, CancellationToken cancellationToken)
    {
        SubmitOutcome outcome;
        if (x.MaxCostMicros is { } cap && x.HoldMicros > cap)
        {
            // A replay is answered even when the cap would refuse the submission.
            outcome = await db.ReadAsync(c => FindAsync(c, null, x), cancellationToken) ?? new SubmitOutcome(SubmitResult.CostCapExceeded, null);
        }
        else
        {
            var now = x.CreatedAt.ToUnixTimeMilliseconds();
            var parameters = new
            {
                x.Id, x.AccountId, x.Model, x.IdempotencyKey, x.RequestHash, x.Input, x.EstimatedMicros, x.HoldMicros,
                Price = StoreJson.Serialize(x.Price), x.WebhookUrl, x.WebhookEvents, x.Metadata, x.TimeoutSeconds,
                x.MaxCostMicros, Now = now, ExpiresAt = x.ExpiresAt.ToUnixTimeMilliseconds(),
                LedgerId = ids.New("txn"), LedgerKind = LedgerKinds.Hold, EventId = ids.New("evt"), EventType = ExecutionStatus.Pending.EventType(),
            };

            // Grouped: every submission of an account locks its balance row until its commit is flushed.
            // The answer is built from the submission (NewExecution.ToPending), not read back: a row per
            // submission and its parsing cost the gateway more than anything else in the write.
            outcome = await db.WriteGroupedAsync(
                PostgresDatabase.Statement(SubmitSql, parameters),
                ReadCreatedAsync,
                async (created, scope) => created
                    ? new SubmitOutcome(SubmitResult.Created, x.ToPending())
                    : await NotCreatedAsync(scope.Connection, scope.Transaction, x, parameters),
                cancellationToken);
        }

        if (outcome.Result == SubmitResult.Created)
        {
            notifier.Notify(Payload(outcome.Execution!.Id, ExecutionStatus.Pending));
            changes.Published(outcome.Execution!);
        }

        return outcome;
    }

    /// <summary>Why the submission inserted nothing: its key is taken (a replay or a reuse), or the balance is short.</summary>
    private static async Task<SubmitOutcome> NotCreatedAsync(NpgsqlConnection c, NpgsqlTransaction tx, NewExecution x, object parameters)
    {
        while (true)
        {
            // A concurrent submission with the same key blocked the insert until it ended; it committed, so it is answered.
            if (await FindAsync(c, tx, x) is { } existing)
            {
                return existing;
            }

            var covered = await c.QueryFirstOrDefaultAsync<bool>(
                "SELECT balance_micros - held_micros >= @HoldMicros FROM accounts WHERE id = @AccountId",
                new { x.AccountId, x.HoldMicros },
                tx);
            if (!covered)
            {
                return new SubmitOutcome(SubmitResult.InsufficientBalance, null);
            }

            // The key's holder was purged meanwhile, or a credit just arrived: try again.
            if (await c.QueryFirstOrDefaultAsync<bool>(SubmitSql, parameters, tx))
            {
                return new SubmitOutcome(SubmitResult.Created, x.ToPending());
            }
        }
    }

    /// <summary>Whether the submission's statement inserted its row (it returns one row then, none otherwise).</summary>
    private static async Task<bool> ReadCreatedAsync(NpgsqlDataReader reader)
    {
        var created = false;
        while (await reader.ReadAsync(CancellationToken.None))
        {
            created = true;
        }

        return created;
    }

    /// <summary>The account's execution with the submission's key, as a replay or a reuse.</summary>
    private static async Task<SubmitOutcome?> FindAsync(NpgsqlConnection c, NpgsqlTransaction? tx, NewExecution x)
    {
        var existing = await c.QueryFirstOrDefaultAsync<ExecutionRow>(
            "SELECT * FROM executions WHERE account_id = @AccountId AND idempotency_key = @IdempotencyKey",
            new { x.AccountId, x.IdempotencyKey },
            tx);
        return existing is null
            ? null
            : new SubmitOutcome(existing.RequestHash == x.RequestHash ? SubmitResult.Replayed : SubmitResult.KeyReused, existing.ToExecution());
    }

    public Task<Execution?> GetAsync(string id, string? accountId, CancellationToken cancellationToken) =>
        db.ReadAsync(async c =>
        {
            var row = await c.QueryFirstOrDefaultAsync<ExecutionRow>(
                "SELECT * FROM executions WHERE id = @id AND (@accountId::text IS NULL OR account_id = @accountId)",
                new { id, accountId });
            return row?.ToExecution();
        }, cancellationToken);

    public Task<Execution?> FindByIdempotencyKeyAsync(string accountId, string idempotencyKey, CancellationToken cancellationToken) =>
        db.ReadAsync(async c => (await c.QueryFirstOrDefaultAsync<ExecutionRow>(
            "SELECT * FROM executions WHERE account_id = @accountId AND idempotency_key = @idempotencyKey",
            new { accountId, idempotencyKey }))?.ToExecution(), cancellationToken);

    public Task<IReadOnlyList<Execution>> ListAsync(string accountId, ExecutionQuery query, CancellationToken cancellationToken) =>
        db.ReadAsync<IReadOnlyList<Execution>>(async c =>
        {
            var rows = await c.QueryAsync<ExecutionRow>(
                """
                SELECT * FROM executions
                WHERE account_id = @accountId
                  AND (@Status::text IS NULL OR status = @Status)
                  AND (@Model::text IS NULL OR model = @Model)
                  AND (@CreatedAfter::bigint IS NULL OR created_at > @CreatedAfter)
                  AND (@Before::text IS NULL OR id < @Before)
                ORDER BY id DESC
                LIMIT @Limit
                """,
                new
                {
                    accountId,
                    Status = query.Status?.ToWire(),
                    query.Model,
                    CreatedAfter = query.CreatedAfter?.ToUnixTimeMilliseconds(),
                    query.Before,
                    query.Limit,
                });
            return [.. rows.Select(r => r.ToExecution())];
        }, cancellationToken);

    public async Task<Execution?> TransitionAsync(ExecutionTransition t, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var eventId = ids.New("evt");
        var parameters = TransitionValues.For(t, now) with
        {
            EventId = eventId,
            EventType = t.To.EventType(),
            ReleaseId = ids.New("txn"),
            ChargeId = ids.New("txn"),
        };

        // Grouped: an ending settles the hold on the account's balance row, which every submission locks
        // too, so it shares their lane; the other moves touch no balance row and commit in a lane of
        // their own, beside it, instead of waiting behind a group of submissions.
        var (execution, leased) = await db.WriteGroupedAsync(
            t.To.IsTerminal() ? GroupedLane.Balances : GroupedLane.Moves,
            PostgresDatabase.Statement(t.To.IsTerminal() ? TerminalMoveSql : MoveSql, parameters),
            ReadMovedAsync,
            (moved, scope) => FinishMoveAsync(moved, scope, t.To.EventType(), eventId, now),
            cancellationToken);

        if (execution is not null)
        {
            notifier.Notify(Payload(execution.Id, t.To));
            handoff?.Offer(leased);
            changes.Published(execution, signalWorkers: leased.Count == 0);
        }

        return execution;
    }

    private static async Task<(ExecutionRow? Row, bool HasEndpoints)> ReadMovedAsync(NpgsqlDataReader reader)
    {
        (ExecutionRow?, bool) moved = (null, false);
        while (await reader.ReadAsync(CancellationToken.None))
        {
            moved = (reader.GetRowParser<ExecutionRow>()(reader), reader.GetBoolean(reader.GetOrdinal("has_endpoints")));
        }

        return moved;
    }

    /// <summary>
    /// The outbox for a move that happened: a delivery to the submission's webhook_url is queued for the
    /// group's last round trip; with enabled endpoints on the account, SharedWrites picks destinations.
    /// A delivery due at once is written leased to this node's worker while it has room, and handed to
    /// it after the commit (<see cref="WebhookHandoff"/>), as on SQLite: no claim between the commit and
    /// the send. If this node dies first, the lease runs out and any node claims it.
    /// </summary>
    private async Task<(Execution? Changed, IReadOnlyList<WebhookDelivery> Leased)> FinishMoveAsync(
        (ExecutionRow? Row, bool HasEndpoints) moved, PostgresDatabase.GroupScope scope, string type, string eventId, long now)
    {
        if (moved.Row is null)
        {
            return (null, []);
        }

        var changed = moved.Row.ToExecution();
        var webhooks = options.Value.Webhooks;
        var firstDelay = webhooks.Schedule[0];
        // The lease outlives the send timeout, as a claim's does.
        var lease = node is not null && handoff is { HasRoom: true }
            ? (node.Id, now + (long)(webhooks.Timeout + options.Value.Dispatch.LeaseDuration).TotalMilliseconds)
            : ((string Owner, long Until)?)null;
        if (moved.HasEndpoints)
        {
            return (changed, await SharedWrites.EnqueueWebhooksAsync(scope.Connection, scope.Transaction, ids, changed, eventId, type, now, firstDelay, lease));
        }

        if (!WebhookEventTypes.All.Contains(type) || !WebhookPayloads.WantedBySubmission(changed, type))
        {
            return (changed, []);
        }

        // What SharedWrites.EnqueueWebhooksAsync writes for a webhook_url when the account has no endpoints.
        var owner = firstDelay <= TimeSpan.Zero ? lease?.Owner : null;
        var id = ids.New("whd");
        var payload = WebhookPayloads.Build(eventId, type, DateTimeOffset.FromUnixTimeMilliseconds(now), changed, thin: false);
        scope.Later.Add(PostgresDatabase.Statement(
            """
            INSERT INTO webhook_deliveries (id, event_id, account_id, execution_id, endpoint_id, url, event_type, payload, status, next_attempt_at, created_at, updated_at, lease_owner, lease_expires_at)
            VALUES (@Id, @EventId, @AccountId, @ExecutionId, NULL, @Url, @Type, @Payload, 'pending', @Due, @Now, @Now, @Owner, @Until)
            """,
            new
            {
                Id = id, EventId = eventId, changed.AccountId, ExecutionId = changed.Id, Url = changed.WebhookUrl!, Type = type, Payload = payload,
                Due = now + (long)firstDelay.TotalMilliseconds, Now = now, Owner = owner, Until = owner is null ? null : lease?.Until,
            }));
        if (owner is null)
        {
            return (changed, []);
        }

        var at = DateTimeOffset.FromUnixTimeMilliseconds(now);
        return (changed, [new WebhookDelivery(id, eventId, changed.AccountId, changed.Id, null, changed.WebhookUrl!, type, payload, DeliveryStatuses.Pending, 0, at, null, null, at, at, null)]);
    }

    // attempt_log is TEXT (not jsonb, which refuses \u0000), so the attempt is appended as text.
    private const string UpdateSql =
        """
        UPDATE executions SET
            status = @To,
            updated_at = @Now,
            output = COALESCE(@Output::text, output),
            artifacts = COALESCE(@Artifacts::text, artifacts),
            error = CASE WHEN @ClearError THEN NULL ELSE COALESCE(@Error::text, error) END,
            provider = COALESCE(@Provider::text, provider),
            provider_model = COALESCE(@ProviderModel::text, provider_model),
            provider_job_id = CASE WHEN @To::text = 'PROCESSING' THEN NULL ELSE COALESCE(@ProviderJobId::text, provider_job_id) END,
            callback_token_hash = COALESCE(@CallbackTokenHash::text, callback_token_hash),
            attempts = attempts + @AttemptIncrement,
            attempt_log = CASE
                WHEN @Attempt::text IS NULL THEN attempt_log
                WHEN attempt_log = '[]' THEN '[' || @Attempt::text || ']'
                ELSE left(attempt_log, -1) || ',' || @Attempt::text || ']' END,
            usage = COALESCE(@Usage::text, usage),
            actual_micros = COALESCE(@ActualMicros::bigint, actual_micros),
            overage_micros = CASE WHEN @ActualMicros::bigint IS NULL THEN overage_micros ELSE GREATEST(0, @ActualMicros::bigint - held_micros) END,
            started_at = CASE WHEN @To = 'PROCESSING' THEN COALESCE(started_at, @Now) ELSE started_at END,
            completed_at = CASE WHEN @Terminal THEN @Now ELSE completed_at END,
            next_attempt_at = COALESCE(@NextAttemptAt::bigint, next_attempt_at),
            next_poll_at = @NextPollAt::bigint,
            lease_owner = CASE WHEN @To = 'PROCESSING' THEN lease_owner ELSE NULL END,
            lease_expires_at = CASE WHEN @To = 'PROCESSING' THEN COALESCE(@LeaseExpiresAt::bigint, lease_expires_at) ELSE NULL END
        WHERE id = @Id
          AND status = ANY(@From)
          AND status IN ('PENDING', 'PROCESSING', 'AWAITING_WEBHOOK')
          AND (@LeaseOwner::text IS NULL OR lease_owner = @LeaseOwner)
          AND (@AccountId::text IS NULL OR account_id = @AccountId)
          AND (@LeaseExpiredBy::bigint IS NULL OR lease_expires_at <= @LeaseExpiredBy)
        RETURNING *
        """;

    // The moved row, and whether the account has endpoints that may want the event (most have none).
    private const string ReturnMoved =
        "SELECT moved.*, EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.account_id = moved.account_id AND e.status = 'enabled') AS has_endpoints FROM moved";

    // The conditional move and its event; every move statement starts with these two.
    private const string MovedAndEvent =
        $"""
        WITH moved AS (
            {UpdateSql}
        ), event AS (
            INSERT INTO execution_events (id, execution_id, account_id, type, status, created_at)
            SELECT @EventId, id, account_id, @EventType, @To, @Now FROM moved
        )
        """;

    private const string MoveSql =
        $"""
        {MovedAndEvent}
        {ReturnMoved}
        """;

    // SharedWrites.SettleAsync in one statement: release the whole hold, charge what it cost capped at the
    // hold (Execution.ChargedMicros, only for COMPLETED), and write the release and charge ledger entries.
    private const string TerminalMoveSql =
        $"""
        {MovedAndEvent}, cost AS (
            SELECT id, account_id, held_micros,
                CASE WHEN status = 'COMPLETED' AND actual_micros IS NOT NULL THEN LEAST(GREATEST(actual_micros, 0), held_micros) ELSE 0 END AS charge
            FROM moved
        ), settled AS (
            UPDATE accounts SET held_micros = accounts.held_micros - cost.held_micros, balance_micros = accounts.balance_micros - cost.charge
            FROM cost
            WHERE accounts.id = cost.account_id
            RETURNING cost.id AS execution_id, cost.account_id, cost.held_micros AS released, cost.charge, accounts.balance_micros, accounts.held_micros
        ), ledger AS (
            INSERT INTO ledger_entries (id, account_id, execution_id, kind, amount_micros, balance_micros, held_micros, created_at)
            SELECT @ReleaseId, account_id, execution_id, 'release', released, balance_micros + charge, held_micros, @Now FROM settled
            UNION ALL
            SELECT @ChargeId, account_id, execution_id, 'charge', charge, balance_micros, held_micros, @Now FROM settled WHERE charge > 0
        )
        {ReturnMoved}
        """;

    /// <summary>What <see cref="PostgresNotificationListener"/> reads: "&lt;execution id&gt; &lt;STATUS&gt;".</summary>
    internal static string Payload(string executionId, ExecutionStatus status) => executionId + " " + status.ToWire();

    /// <summary>Planner settings for one transaction: an ordered index scan, never a bitmap scan of every match and a sort.</summary>
    internal const string OrderedScanOnly = "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off";

    internal const string ClaimSql =
        """
        UPDATE executions SET lease_owner = @owner, lease_expires_at = @LeaseUntil
        WHERE id IN (
            SELECT id FROM executions
            WHERE status = 'PENDING' AND next_attempt_at <= @Now AND expires_at > @Now
              AND (lease_expires_at IS NULL OR lease_expires_at <= @Now)
            ORDER BY next_attempt_at
            LIMIT @max
            FOR UPDATE SKIP LOCKED)
        RETURNING *
        """;

    public Task<IReadOnlyList<Execution>> ClaimDueAsync(string owner, int max, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken) =>
        db.WriteAsync<IReadOnlyList<Execution>>(async (c, tx) =>
        {
            // SKIP LOCKED: nodes claiming at once take different rows instead of queueing on each other.
            // The due rows are the first few of the index in next_attempt_at order. Statistics lag behind a
            // growing backlog (autovacuum analyzes about once a minute), and with an estimate of a few rows
            // PostgreSQL chose to read the whole backlog and sort it on every claim (5 ms at 10,000 pending)
            // rather than walk the index; this transaction rules those plans out.
            await c.ExecuteAsync(OrderedScanOnly, transaction: tx);
            var rows = await c.QueryAsync<ExecutionRow>(
                ClaimSql,
                new { owner, max, Now = now.ToUnixTimeMilliseconds(), LeaseUntil = leaseUntil.ToUnixTimeMilliseconds() },
                tx);
            return ([.. rows.Select(r => r.ToExecution())], true);
        }, cancellationToken);

    public Task ReleaseClaimAsync(string id, string owner, DateTimeOffset notBefore, CancellationToken cancellationToken) =>
        db.WriteStatementAsync(async c =>
        {
            var n = await c.ExecuteAsync(
                """
                UPDATE executions SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = @NotBefore
                WHERE id = @id AND status = 'PENDING' AND lease_owner = @owner
                """,
                new { id, owner, NotBefore = notBefore.ToUnixTimeMilliseconds() });
            return n;
        }, cancellationToken);

    public Task<bool> RenewLeaseAsync(string id, string owner, DateTimeOffset leaseUntil, CancellationToken cancellationToken) =>
        db.WriteStatementAsync(async c =>
        {
            var n = await c.ExecuteAsync(
                "UPDATE executions SET lease_expires_at = @Until WHERE id = @id AND lease_owner = @owner AND status IN ('PENDING', 'PROCESSING')",
                new { id, owner, Until = leaseUntil.ToUnixTimeMilliseconds() });
            return n == 1;
        }, cancellationToken);

    public Task<IReadOnlyList<Execution>> ClaimDuePollsAsync(int max, DateTimeOffset now, DateTimeOffset nextPollAt, CancellationToken cancellationToken) =>
        db.WriteStatementAsync<IReadOnlyList<Execution>>(async c =>
        {
            var rows = await c.QueryAsync<ExecutionRow>(
                """
                UPDATE executions SET next_poll_at = @Next
                WHERE id IN (
                    SELECT id FROM executions
                    WHERE status = 'AWAITING_WEBHOOK' AND next_poll_at <= @Now
                    ORDER BY next_poll_at
                    LIMIT @max
                    FOR UPDATE SKIP LOCKED)
                RETURNING *
                """,
                new { max, Now = now.ToUnixTimeMilliseconds(), Next = nextPollAt.ToUnixTimeMilliseconds() });
            return [.. rows.Select(r => r.ToExecution())];
        }, cancellationToken);

    public Task<IReadOnlyList<string>> ListExpiredAsync(DateTimeOffset now, int max, CancellationToken cancellationToken) =>
        db.ReadAsync<IReadOnlyList<string>>(async c =>
            [.. await c.QueryAsync<string>(
                $"SELECT id FROM executions WHERE status IN {NonTerminalList} AND expires_at <= @Now ORDER BY expires_at LIMIT @max",
                new { Now = now.ToUnixTimeMilliseconds(), max })],
            cancellationToken);

    public Task<IReadOnlyList<Execution>> ListAbandonedAsync(DateTimeOffset now, int max, CancellationToken cancellationToken) =>
        db.ReadAsync<IReadOnlyList<Execution>>(async c =>
            [.. (await c.QueryAsync<ExecutionRow>(
                "SELECT * FROM executions WHERE status = 'PROCESSING' AND lease_expires_at <= @Now ORDER BY lease_expires_at LIMIT @max",
                new { Now = now.ToUnixTimeMilliseconds(), max })).Select(r => r.ToExecution())],
            cancellationToken);

    public Task<IReadOnlyList<string>> PurgeAsync(DateTimeOffset endedBefore, int max, CancellationToken cancellationToken) =>
        db.WriteAsync<IReadOnlyList<string>>(async (c, tx) =>
        {
            // Ended executions never change again, so nothing else writes these rows: no lock is needed to delete them.
            var ids = (await c.QueryAsync<string>(
                "SELECT id FROM executions WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED') AND completed_at < @Before LIMIT @max",
                new { Before = endedBefore.ToUnixTimeMilliseconds(), max },
                tx)).ToArray();
            if (ids.Length > 0)
            {
                await c.ExecuteAsync("DELETE FROM execution_events WHERE execution_id = ANY(@ids)", new { ids }, tx);
                await c.ExecuteAsync(
                    "DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE execution_id = ANY(@ids))", new { ids }, tx);
                await c.ExecuteAsync("DELETE FROM webhook_deliveries WHERE execution_id = ANY(@ids)", new { ids }, tx);
                await c.ExecuteAsync("DELETE FROM executions WHERE id = ANY(@ids)", new { ids }, tx);
            }

            return (ids, true);
        }, cancellationToken);

    public Task<IReadOnlyList<ExecutionEvent>> ListEventsAsync(string executionId, long afterSequence, CancellationToken cancellationToken) =>
        db.ReadAsync<IReadOnlyList<ExecutionEvent>>(async c =>
            [.. (await c.QueryAsync<EventRow>(
                "SELECT * FROM execution_events WHERE execution_id = @executionId AND seq > @afterSequence ORDER BY seq",
                new { executionId, afterSequence })).Select(r => r.ToEvent())],
            cancellationToken);
}
