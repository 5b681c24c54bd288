using System.Data.Common;
using Dapper;
using Microsoft.Data.Sqlite;

namespace ModelRoute.Server.Storage.Sqlite;

/// <summary>
/// Executions, holds and the outbox on SQLite. Every state move is one conditional UPDATE. What follows a commit
/// (hand-overs, wake-ups) is <see cref="ExecutionCommits"/>'s.
/// </summary>
public sealed class SqliteExecutionStore(SqliteDatabase db, IdGenerator ids, IOptions<ModelRouteOptions> options, TimeProvider time)
    : ExecutionQueries((name, _) => "@" + name + " IS NULL", OpenStatus, EndedStatus, column => column + " IN @ids", MetadataIs), ISqlExecutionStore
{
    /// <summary>
    /// json_each, not a JSON path: a path cannot name every key a submission may use (a double quote, a leading '$'),
    /// and json_each reads keys and values unescaped. 'text' is a JSON string: numbers and booleans never match.
    /// </summary>
    private static string MetadataIs(int i) =>
        $"EXISTS (SELECT 1 FROM json_each(executions.metadata) AS m WHERE m.key = @MetaKey{i} AND m.type = 'text' AND m.value = @MetaValue{i})";

    /// <summary>
    /// The statuses of open and of ended executions as the predicates of their partial indexes (migration 0004),
    /// which a query repeats word for word for SQLite to use the index. OR chains, not IN lists: for an IN list of
    /// three or more values SQLite builds a temporary b-tree of it at every execution of the statement.
    /// </summary>
    internal const string OpenStatus = "(status = 'PENDING' OR status = 'PROCESSING' OR status = 'AWAITING_WEBHOOK')";

    internal const string EndedStatus = "(status = 'COMPLETED' OR status = 'FAILED' OR status = 'CANCELLED' OR status = 'EXPIRED')";

    /// <summary>A submission's row; <c>ON CONFLICT … DO NOTHING</c> leaves a taken key to the replay check.</summary>
    /// <remarks>
    /// One row of VALUES: SQLite gives an INSERT … SELECT a statement journal (a copy of every page it changes, in case
    /// it fails halfway), which cost more than the separate check of the money before it.
    /// </remarks>
    internal const string InsertSql = """
        INSERT INTO executions (id, account_id, model, status, idempotency_key, request_hash, input,
            estimated_micros, held_micros, price, webhook_url, webhook_events, metadata, timeout_seconds,
            max_cost_micros, created_at, updated_at, expires_at, next_attempt_at, lease_owner, lease_expires_at, api_key_id, trace_parent)
        VALUES (@Id, @AccountId, @Model, 'PENDING', @IdempotencyKey, @RequestHash, @Input,
            @EstimatedMicros, @HoldMicros, @Price, @WebhookUrl, @WebhookEvents, @Metadata, @TimeoutSeconds,
            @MaxCostMicros, @Now, @Now, @ExpiresAt, COALESCE(@LeaseExpiresAt, @Now), @LeaseOwner, @LeaseExpiresAt, @ApiKeyId, @TraceParent)
        ON CONFLICT (account_id, idempotency_key) DO NOTHING
        """;

    /// <summary>Places a submission's hold, after its row is in; the money was checked before the row (<c>OR FAIL</c>: see <see cref="MoveSql"/>).</summary>
    internal const string HoldSql = """
        UPDATE OR FAIL accounts SET held_micros = held_micros + @HoldMicros
        WHERE id = @AccountId
        RETURNING balance_micros, held_micros
        """;

    /// <summary>Whether a key with a spending limit has room for a hold (docs/tenancy.md): its open holds plus its charges stay within it.</summary>
    internal const string KeyRoomSql = "SELECT 1 FROM api_keys WHERE id = @ApiKeyId AND max_spend_micros - held_micros - spent_micros >= @HoldMicros";

    /// <summary>Places a submission's hold on its key's figures too, for a key with a spending limit only.</summary>
    internal const string KeyHoldSql = "UPDATE OR FAIL api_keys SET held_micros = held_micros + @HoldMicros WHERE id = @ApiKeyId";

    /// <summary>
    /// Leases due PENDING executions to a dispatcher (<c>OR FAIL</c>: see <see cref="MoveSql"/>), and makes each next due
    /// when its lease runs out, so that later claims do not read past it (see PostgresExecutionStore.ClaimSql).
    /// </summary>
    /// <remarks>
    /// Fair share (docs/routing.md): the claim walks the accounts with PENDING work (one index seek each) and takes the
    /// front of each one's queue, then orders what it found by its place: the account's executions in flight plus its
    /// rank in the account's own queue. The account with the fewest running goes first, and within an account the
    /// oldest. An account's cap (max_concurrency) leaves out what would take it past the cap. The executions in flight
    /// are counted only when two accounts or more have due work, or the account is capped: with one account the order
    /// is its own queue's, as before: they are counted once per account (its first row) and spread over its rows with a
    /// window, which also tells whether two accounts have due work, so that the due rows are read once (SQLite runs a
    /// CTE named more than once again for each name). CROSS JOIN keeps SQLite to the accounts as the outer loop.
    /// </remarks>
    internal const string ClaimSql = """
        UPDATE OR FAIL executions SET lease_owner = @owner, lease_expires_at = @LeaseUntil, next_attempt_at = @LeaseUntil
        WHERE id IN (
            WITH RECURSIVE pending(account_id) AS (
                SELECT (SELECT account_id FROM executions WHERE status = 'PENDING' ORDER BY account_id LIMIT 1)
                UNION ALL
                SELECT (SELECT e.account_id FROM executions e WHERE e.status = 'PENDING' AND e.account_id > p.account_id ORDER BY e.account_id LIMIT 1)
                FROM pending p WHERE p.account_id IS NOT NULL
            ), due AS (
                SELECT d.id, d.account_id, d.next_attempt_at
                FROM pending p CROSS JOIN executions d
                WHERE p.account_id IS NOT NULL AND d.id IN (
                    SELECT x.id FROM executions x
                    WHERE x.account_id = p.account_id AND x.status = 'PENDING' AND x.next_attempt_at <= @Now AND x.expires_at > @Now
                      AND (x.lease_expires_at IS NULL OR x.lease_expires_at <= @Now)
                    ORDER BY x.next_attempt_at
                    LIMIT @max)
            )
            SELECT id FROM (
                SELECT id, next_attempt_at, max_concurrency, rank + COALESCE(max(in_flight) OVER (PARTITION BY account_id), 0) AS place
                FROM (
                    SELECT id, account_id, next_attempt_at, rank, max_concurrency,
                        CASE WHEN rank = 1 AND (max_concurrency IS NOT NULL OR contended)
                        THEN (SELECT count(*) FROM executions r WHERE r.account_id = ranked.account_id AND r.status = 'PROCESSING')
                           + (SELECT count(*) FROM executions l WHERE l.account_id = ranked.account_id AND l.status = 'PENDING'
                                AND l.next_attempt_at > @Now AND l.lease_expires_at > @Now)
                        END AS in_flight
                    FROM (
                        SELECT id, account_id, next_attempt_at,
                            row_number() OVER (PARTITION BY account_id ORDER BY next_attempt_at) AS rank,
                            min(account_id) OVER () <> max(account_id) OVER () AS contended,
                            (SELECT a.max_concurrency FROM accounts a WHERE a.id = due.account_id) AS max_concurrency
                        FROM due) ranked))
            WHERE max_concurrency IS NULL OR place <= max_concurrency
            ORDER BY place, next_attempt_at
            LIMIT @max)
        RETURNING *
        """;

    /// <summary>A state move: one conditional UPDATE, applied only from the statuses and lease it names.</summary>
    /// <remarks>
    /// Why the writer's UPDATEs with RETURNING say <c>OR FAIL</c>: SQLite runs RETURNING as a trigger, which makes the
    /// statement a write that might stop halfway, and when such a statement has a check that would abort it (NOT NULL,
    /// CHECK, UNIQUE), SQLite first copies every page it changes into a statement journal, to undo it alone. That copying
    /// was a twentieth of the writer's time. A statement that fails instead of aborting keeps what it changed before the
    /// failure, which for a statement of one row is nothing; the claims change only lease columns, which no check
    /// covers. A write that fails after changing rows has its whole group run again with savepoints (SqliteDatabase).
    /// </remarks>
    internal const string MoveSql = $"""
        UPDATE OR FAIL executions SET
            status = @To,
            updated_at = @Now,
            output = COALESCE(@Output, output),
            artifacts = COALESCE(@Artifacts, artifacts),
            error = CASE WHEN @ClearError THEN NULL ELSE COALESCE(@Error, error) END,
            provider = COALESCE(@Provider, provider),
            provider_model = COALESCE(@ProviderModel, provider_model),
            provider_job_id = CASE WHEN @To = 'PROCESSING' THEN NULL ELSE COALESCE(@ProviderJobId, provider_job_id) END,
            callback_token_hash = COALESCE(@CallbackTokenHash, callback_token_hash),
            attempts = attempts + @AttemptIncrement,
            attempt_log = CASE WHEN @Attempt IS NULL THEN attempt_log ELSE json_insert(attempt_log, '$[#]', json(@Attempt)) END,
            usage = COALESCE(@Usage, usage),
            actual_micros = COALESCE(@ActualMicros, actual_micros),
            overage_micros = CASE WHEN @ActualMicros IS NULL THEN overage_micros ELSE MAX(0, @ActualMicros - held_micros) END,
            started_at = CASE WHEN @To = 'PROCESSING' THEN COALESCE(started_at, @Now) ELSE started_at END,
            completed_at = CASE WHEN @Terminal THEN @Now ELSE completed_at END,
            next_attempt_at = COALESCE(@NextAttemptAt, next_attempt_at),
            next_poll_at = @NextPollAt,
            pending_result = CASE WHEN @Terminal THEN NULL ELSE COALESCE(@PendingResult, pending_result) END,
            lease_owner = CASE WHEN @To = 'PROCESSING' THEN lease_owner ELSE NULL END,
            lease_expires_at = CASE WHEN @To = 'PROCESSING' THEN COALESCE(@LeaseExpiresAt, lease_expires_at) ELSE NULL END
        WHERE id = @Id
          AND (status = @From0 OR status = @From1 OR status = @From2)
          AND {OpenStatus}
          AND (@LeaseOwner IS NULL OR lease_owner = @LeaseOwner)
          AND (@AccountId IS NULL OR account_id = @AccountId)
          AND (@LeaseExpiredBy IS NULL OR lease_expires_at <= @LeaseExpiredBy)
        RETURNING *, EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.account_id = executions.account_id AND e.status = 'enabled') AS has_endpoints
        """;

    public Task<SubmitOutcome> SubmitAsync(NewExecution x, LeaseTerms? lease, CancellationToken cancellationToken)
    {
        // Everything that can be done off the single writer thread is done before the write, the answer included: it
        // is built from the submission (NewExecution.ToPending), not read back.
        var row = new
        {
            x.Id, x.AccountId, x.Model, x.IdempotencyKey, x.RequestHash, x.Input, x.EstimatedMicros, x.HoldMicros,
            Price = StoreJson.Serialize(x.Price), x.WebhookUrl, x.WebhookEvents, x.Metadata, x.TimeoutSeconds, x.MaxCostMicros,
            Now = x.CreatedAt.ToUnixTimeMilliseconds(), ExpiresAt = x.ExpiresAt.ToUnixTimeMilliseconds(),
            LeaseOwner = lease?.Owner, LeaseExpiresAt = lease?.ExpiresAt, x.ApiKeyId, x.TraceParent,
        };
        var created = new SubmitOutcome(SubmitResult.Created, x.ToPending());
        return db.WriteAsync<SubmitOutcome>((c, tx) => WriteSubmissionAsync(c, tx, x, row, row.Now, created), cancellationToken, urgent: true);
    }

    /// <summary>
    /// The common case (a new key, money enough) runs five statements. A replay, a reused key or too little money is
    /// found before anything has changed (see SqliteDatabase.WriteAsync), and a replay answers before any refusal.
    /// </summary>
    private async Task<(SubmitOutcome, bool)> WriteSubmissionAsync(
        SqliteConnection c, SqliteTransaction tx, NewExecution x, object row, long now, SubmitOutcome created)
    {
        if (x.MaxCostMicros is { } cap && x.HoldMicros > cap)
        {
            return (await ExistingAsync(c, tx, x) ?? new SubmitOutcome(SubmitResult.CostCapExceeded, null), false);
        }

        var funded = await c.QueryFirstOrDefaultPreparedAsync<long>(
            "SELECT 1 FROM accounts WHERE id = @AccountId AND balance_micros - held_micros >= @HoldMicros",
            new { x.AccountId, x.HoldMicros },
            tx);
        if (funded != 1)
        {
            return (await ExistingAsync(c, tx, x) ?? new SubmitOutcome(SubmitResult.InsufficientBalance, null), false);
        }

        // The key's limit after the balance (docs/tenancy.md); a statement more only for a key with a limit.
        if (x.KeySpendLimited && await c.QueryFirstOrDefaultPreparedAsync<long>(KeyRoomSql, new { x.ApiKeyId, x.HoldMicros }, tx) != 1)
        {
            return (await ExistingAsync(c, tx, x) ?? new SubmitOutcome(SubmitResult.KeySpendLimitExceeded, null), false);
        }

        if (await c.ExecutePreparedAsync(InsertSql, row, tx) == 0)
        {
            return ((await ExistingAsync(c, tx, x))!, false); // The key is taken.
        }

        // The money was there a statement ago, and nothing else writes in between (one writer, one transaction).
        var account = await c.QuerySinglePreparedAsync<(long Balance, long Held)>(HoldSql, new { x.AccountId, x.HoldMicros }, tx);
        await SharedWrites.InsertLedgerAsync(c, tx, ids, x.AccountId, x.Id, LedgerKinds.Hold, x.HoldMicros, account.Balance, account.Held, now);
        if (x.KeySpendLimited)
        {
            await c.ExecutePreparedAsync(KeyHoldSql, new { x.ApiKeyId, x.HoldMicros }, tx);
        }

        await InsertEventAsync(c, tx, x.Id, x.AccountId, ExecutionStatus.Pending, now);
        return (created, true);
    }

    private protected override Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> read, CancellationToken cancellationToken) =>
        db.ReadAsync(read, cancellationToken);

    private protected override Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<(T Result, bool Commit)>> write, CancellationToken cancellationToken) =>
        db.WriteAsync(write, cancellationToken);

    public Task<StoredTransition> TransitionAsync(ExecutionTransition t, DeliveryLeaseTerms? deliveryLease, CancellationToken cancellationToken)
    {
        // Only non-terminal statuses can be left, so three slots hold any transition's sources.
        if (t.From.Count > 3)
        {
            throw new ArgumentException("A transition leaves at most three statuses.", nameof(t));
        }

        // The values (JSON included) are made here, off the single writer thread.
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var parameters = TransitionValues.For(t, now);
        return db.WriteAsync<StoredTransition>((c, tx) => WriteMoveAsync(c, tx, t, parameters, deliveryLease), cancellationToken);
    }

    private async Task<(StoredTransition, bool)> WriteMoveAsync(
        SqliteConnection c, SqliteTransaction tx, ExecutionTransition t, TransitionValues parameters, DeliveryLeaseTerms? deliveryLease)
    {
        var now = parameters.Now;
        var row = await c.QueryFirstOrDefaultPreparedAsync<ExecutionRow>(MoveSql, parameters, tx);
        if (row is null)
        {
            return (default, false);
        }

        if (parameters.Terminal)
        {
            await SharedWrites.SettleAsync(c, tx, ids, row.AccountId, row.Id, row.Model, t.To, row.HeldMicros, row.ActualMicros, now, row.ApiKeyId);
        }

        var type = t.To.EventType();
        var eventId = await InsertEventAsync(c, tx, row.Id, row.AccountId, t.To, now);
        var due = SharedWrites.DeliveriesDue(row.HasEndpoints, row.WebhookUrl, row.WebhookEvents, type);
        if (!due.Any)
        {
            // No delivery to write: the row becomes an execution (its JSON parsed) after the commit, off the writer's thread.
            return (new StoredTransition(row), true);
        }

        var changed = row.ToExecution();
        var webhooks = options.Value.Webhooks;
        var lease = deliveryLease is { } l ? (l.Owner, now + (long)l.Length.TotalMilliseconds) : ((string, long)?)null;
        var enqueued = await SharedWrites.EnqueueWebhooksAsync(c, tx, ids, changed, eventId, type, now, webhooks.Schedule[0], due, lease);
        return (new StoredTransition(changed, enqueued), true);
    }

    public Task<IReadOnlyList<Execution>> ClaimDueAsync(string owner, int max, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken) =>
        db.WriteAsync<IReadOnlyList<Execution>>(async (c, tx) =>
        {
            var rows = await c.QueryPreparedAsync<ExecutionRow>(
                ClaimSql,
                new { owner, max, Now = now.ToUnixTimeMilliseconds(), LeaseUntil = leaseUntil.ToUnixTimeMilliseconds() },
                tx);
            return ([.. rows.Select(r => r.ToExecution())], true);
        }, cancellationToken);

    public Task ReleaseClaimAsync(string id, string owner, DateTimeOffset notBefore, CancellationToken cancellationToken) =>
        db.WriteAsync(async (c, tx) =>
        {
            var n = await c.ExecutePreparedAsync(
                """
                UPDATE executions SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = @NotBefore
                WHERE id = @id AND status = 'PENDING' AND lease_owner = @owner
                """,
                new { id, owner, NotBefore = notBefore.ToUnixTimeMilliseconds() },
                tx);
            return (n, true);
        }, cancellationToken);

    public Task<bool> RenewLeaseAsync(string id, string owner, DateTimeOffset leaseUntil, CancellationToken cancellationToken) =>
        db.WriteAsync(async (c, tx) =>
        {
            var n = await c.ExecutePreparedAsync(
                "UPDATE executions SET lease_expires_at = @Until, next_attempt_at = CASE WHEN status = 'PENDING' THEN @Until ELSE next_attempt_at END WHERE id = @id AND lease_owner = @owner AND (status = 'PENDING' OR status = 'PROCESSING')",
                new { id, owner, Until = leaseUntil.ToUnixTimeMilliseconds() },
                tx);
            return (n == 1, true);
        }, cancellationToken);

    public Task<IReadOnlyList<Execution>> ClaimDuePollsAsync(int max, DateTimeOffset now, DateTimeOffset nextPollAt, CancellationToken cancellationToken) =>
        db.WriteAsync<IReadOnlyList<Execution>>(async (c, tx) =>
        {
            var rows = await c.QueryPreparedAsync<ExecutionRow>(
                """
                UPDATE executions SET next_poll_at = @Next
                WHERE id IN (
                    SELECT id FROM executions
                    WHERE status = 'AWAITING_WEBHOOK' AND next_poll_at <= @Now
                    ORDER BY next_poll_at
                    LIMIT @max)
                RETURNING *
                """,
                new { max, Now = now.ToUnixTimeMilliseconds(), Next = nextPollAt.ToUnixTimeMilliseconds() },
                tx);
            return ([.. rows.Select(r => r.ToExecution())], true);
        }, cancellationToken);


    private async Task<string> InsertEventAsync(SqliteConnection c, SqliteTransaction tx, string executionId, string accountId, ExecutionStatus status, long now)
    {
        var id = ids.New("evt");
        await c.ExecutePreparedAsync(
            """
            INSERT INTO execution_events (id, execution_id, account_id, type, status, created_at)
            VALUES (@id, @executionId, @accountId, @Type, @Status, @now)
            """,
            new { id, executionId, accountId, Type = status.EventType(), Status = status.ToWire(), now },
            tx);
        return id;
    }
}
