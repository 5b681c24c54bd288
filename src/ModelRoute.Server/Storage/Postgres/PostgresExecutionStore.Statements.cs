using Dapper;
using ModelRoute.Server.Webhooks;
using Npgsql;

namespace ModelRoute.Server.Storage.Postgres;

/// <summary>The SQL of submissions, state moves, settlements, webhook deliveries and claims (docs/architecture.md), beside the store that runs it.</summary>
public sealed partial class PostgresExecutionStore
{
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
                max_cost_micros, created_at, updated_at, expires_at, next_attempt_at, lease_owner, lease_expires_at, api_key_id, trace_parent)
            SELECT @Id, @AccountId, @Model, 'PENDING', @IdempotencyKey, @RequestHash, @Input,
                @EstimatedMicros, @HoldMicros, @Price, @WebhookUrl, @WebhookEvents, @Metadata, @TimeoutSeconds,
                @MaxCostMicros, @Now, @Now, @ExpiresAt, COALESCE(@LeaseExpiresAt::bigint, @Now), @LeaseOwner, @LeaseExpiresAt, @ApiKeyId, @TraceParent
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

    // The submissions gathered while the previous group ran, as one statement (one implicit transaction: all of it
    // commits, or none). It inserts the longest run of each account's submissions (in queue order) that its available
    // balance covers, skips keys already taken (ON CONFLICT), writes their events, and places the holds the inserted
    // rows need: one update of each account row, where a statement each made a new version of the row per submission.
    // Each ledger entry carries the balance and held amount just after its own hold, as if placed one by one.
    // The balance is read without a lock, so that the account's row is locked only from the holds' update (run after
    // the inserts that feed it) to the end of the commit's flush: every ending's settlement needs that row too. The
    // update sees the row's newest version, and the table's CHECK (balance - held >= 0) refuses it if something took
    // the balance since the read (a debit, another node's group); the group then fails and each submission runs alone,
    // locking first (SubmitSql). Settlements only make more of a balance available, so on one node the read is at
    // worst too cautious, and a submission it leaves out is answered as one alone would be (NotCreatedAsync), which
    // looks again under the lock before it refuses.
    private const string SubmitGroupSql =
        """
        WITH given AS (
            SELECT * FROM unnest(@Ids::text[], @AccountIds::text[], @Models::text[], @IdempotencyKeys::text[], @RequestHashes::text[],
                @Inputs::text[], @EstimatedMicros::bigint[], @HoldMicros::bigint[], @Prices::text[], @WebhookUrls::text[],
                @WebhookEvents::text[], @Metadata::text[], @TimeoutSeconds::bigint[], @MaxCostMicros::bigint[], @Nows::bigint[],
                @ExpiresAts::bigint[], @LedgerIds::text[], @EventIds::text[], @LeaseOwners::text[], @LeaseExpiresAts::bigint[],
                @ApiKeyIds::text[], @TraceParents::text[]) WITH ORDINALITY
                AS g(id, account_id, model, idempotency_key, request_hash, input, estimated_micros, hold_micros, price, webhook_url,
                    webhook_events, metadata, timeout_seconds, max_cost_micros, now, expires_at, ledger_id, event_id, lease_owner,
                    lease_expires_at, api_key_id, trace_parent, ord)
        ), account AS (
            SELECT id, balance_micros - held_micros AS available FROM accounts
            WHERE id IN (SELECT account_id FROM given)
        ), fitting AS (
            SELECT g.* FROM (SELECT given.*, sum(hold_micros) OVER (PARTITION BY account_id ORDER BY ord) AS running FROM given) g
            JOIN account ON account.id = g.account_id
            WHERE g.running <= account.available
        ), created AS (
            INSERT INTO executions (id, account_id, model, status, idempotency_key, request_hash, input,
                estimated_micros, held_micros, price, webhook_url, webhook_events, metadata, timeout_seconds,
                max_cost_micros, created_at, updated_at, expires_at, next_attempt_at, lease_owner, lease_expires_at, api_key_id, trace_parent)
            SELECT id, account_id, model, 'PENDING', idempotency_key, request_hash, input,
                estimated_micros, hold_micros, price, webhook_url, webhook_events, metadata, timeout_seconds,
                max_cost_micros, now, now, expires_at, COALESCE(lease_expires_at, now), lease_owner, lease_expires_at, api_key_id, trace_parent
            FROM fitting
            ORDER BY ord
            ON CONFLICT (account_id, idempotency_key) DO NOTHING
            RETURNING id
        ), placed AS (
            SELECT g.* FROM given g JOIN created ON created.id = g.id
        ), event AS (
            INSERT INTO execution_events (id, execution_id, account_id, type, status, created_at)
            SELECT event_id, id, account_id, @EventType, 'PENDING', now FROM placed
        ), held AS (
            UPDATE accounts SET held_micros = accounts.held_micros + totals.total
            FROM (SELECT account_id, sum(hold_micros) AS total FROM placed GROUP BY account_id) totals
            WHERE accounts.id = totals.account_id
            RETURNING accounts.id, accounts.balance_micros, accounts.held_micros
        ), ledger AS (
            INSERT INTO ledger_entries (id, account_id, execution_id, kind, amount_micros, balance_micros, held_micros, created_at)
            SELECT p.ledger_id, p.account_id, p.id, @LedgerKind, p.hold_micros, held.balance_micros,
                held.held_micros - (sum(p.hold_micros) OVER (PARTITION BY p.account_id ORDER BY p.ord DESC) - p.hold_micros), p.now
            FROM placed p JOIN held ON held.id = p.account_id
        )
        SELECT id FROM created
        """;

    /// <summary>A delivery to a submission's webhook_url, written with the group's commit.</summary>
    private sealed record SubmissionDelivery(
        string Id, string EventId, string AccountId, string ExecutionId, string Url, string Type, string Payload, long Due, long Now, string? Owner, long? Until, string? TraceParent);

    // The group's deliveries to webhook_urls, as one insert.
    private const string InsertDeliveriesSql =
        """
        INSERT INTO webhook_deliveries (id, event_id, account_id, execution_id, endpoint_id, url, event_type, payload, status, next_attempt_at, created_at, updated_at, lease_owner, lease_expires_at, trace_parent)
        SELECT id, event_id, account_id, execution_id, NULL, url, event_type, payload, 'pending', due, now, now, owner, until, trace_parent
        FROM unnest(@Ids::text[], @EventIds::text[], @AccountIds::text[], @ExecutionIds::text[], @Urls::text[], @Types::text[], @Payloads::text[],
            @Dues::bigint[], @Nows::bigint[], @Owners::text[], @Untils::bigint[], @TraceParents::text[])
            AS d(id, event_id, account_id, execution_id, url, event_type, payload, due, now, owner, until, trace_parent)
        """;

    private static NpgsqlBatchCommand DeliveriesStatement(IReadOnlyList<SubmissionDelivery> deliveries) =>
        PostgresDatabase.Statement(InsertDeliveriesSql, new
        {
            Ids = deliveries.Select(d => d.Id).ToArray(),
            EventIds = deliveries.Select(d => d.EventId).ToArray(),
            AccountIds = deliveries.Select(d => d.AccountId).ToArray(),
            ExecutionIds = deliveries.Select(d => d.ExecutionId).ToArray(),
            Urls = deliveries.Select(d => d.Url).ToArray(),
            Types = deliveries.Select(d => d.Type).ToArray(),
            Payloads = deliveries.Select(d => d.Payload).ToArray(),
            Dues = deliveries.Select(d => d.Due).ToArray(),
            Nows = deliveries.Select(d => d.Now).ToArray(),
            Owners = deliveries.Select(d => d.Owner).ToArray(),
            Untils = deliveries.Select(d => d.Until).ToArray(),
            TraceParents = deliveries.Select(d => d.TraceParent).ToArray(),
        });

    // attempt_log is TEXT (not jsonb, which refuses \u0000), so the attempt is appended as text.
    // Every lookup of one row by id compares the status through an expression, (status || ''): a plain "status = …"
    // lets the planner prove a partial index's predicate (ix_executions_due, ix_executions_open_expiry) and, with
    // statistics taken before a backlog built up, scan that whole index in place of the primary key: 15 ms a move with
    // 30,000 PENDING rows, which stalled dispatch for most of a minute after a burst (PostgresLookupPlanTests).
    private static string Update(bool startToo) =>
        $$"""
        UPDATE executions SET
            status = @To,
            updated_at = @Now,
            output = COALESCE(@Output::text, output),
            artifacts = COALESCE(@Artifacts::text, artifacts),
            error = CASE WHEN @ClearError THEN NULL ELSE COALESCE(@Error::text, error) END,
            provider = COALESCE(@Provider::text, provider),
            provider_model = COALESCE(@ProviderModel::text, provider_model),
            {{(startToo ? "provider_job_id = @ProviderJobId::text," : "provider_job_id = CASE WHEN @To::text = 'PROCESSING' THEN NULL ELSE COALESCE(@ProviderJobId::text, provider_job_id) END,")}}
            callback_token_hash = COALESCE(@CallbackTokenHash::text, callback_token_hash),
            attempts = attempts + @AttemptIncrement,
            attempt_log = CASE
                WHEN @Attempt::text IS NULL THEN attempt_log
                WHEN attempt_log = '[]' THEN '[' || @Attempt::text || ']'
                ELSE left(attempt_log, -1) || ',' || @Attempt::text || ']' END,
            usage = COALESCE(@Usage::text, usage),
            actual_micros = COALESCE(@ActualMicros::bigint, actual_micros),
            overage_micros = CASE WHEN @ActualMicros::bigint IS NULL THEN overage_micros ELSE GREATEST(0, @ActualMicros::bigint - held_micros) END,
            {{(startToo ? "started_at = COALESCE(started_at, @StartedNow)," : "started_at = CASE WHEN @To = 'PROCESSING' THEN COALESCE(started_at, @Now) ELSE started_at END,")}}
            completed_at = CASE WHEN @Terminal THEN @Now ELSE completed_at END,
            next_attempt_at = COALESCE(@NextAttemptAt::bigint, next_attempt_at),
            next_poll_at = @NextPollAt::bigint,
            pending_result = CASE WHEN @Terminal THEN NULL ELSE COALESCE(@PendingResult::text, pending_result) END,
            lease_owner = CASE WHEN @To = 'PROCESSING' THEN lease_owner ELSE NULL END,
            lease_expires_at = CASE WHEN @To = 'PROCESSING' THEN COALESCE(@LeaseExpiresAt::bigint, lease_expires_at) ELSE NULL END
        WHERE id = @Id
          AND (status || '') = ANY(@From)
          AND (status || '') IN ('PENDING', 'PROCESSING', 'AWAITING_WEBHOOK')
          AND (@LeaseOwner::text IS NULL OR lease_owner = @LeaseOwner)
          AND (@AccountId::text IS NULL OR account_id = @AccountId)
          AND (@LeaseExpiredBy::bigint IS NULL OR lease_expires_at <= @LeaseExpiredBy)
        RETURNING *
        """;

    private static readonly string UpdateSql = Update(startToo: false);

    // The moved row, and whether the account has endpoints that may want the event (most have none).
    private const string ReturnMoved =
        "SELECT moved.*, EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.account_id = moved.account_id AND e.status = 'enabled') AS has_endpoints FROM moved";

    // The conditional move and its event; every move statement starts with these two.
    private static readonly string MovedAndEvent =
        $"""
        WITH moved AS (
            {UpdateSql}
        ), event AS (
            INSERT INTO execution_events (id, execution_id, account_id, type, status, created_at)
            SELECT @EventId, id, account_id, @EventType, @To, @Now FROM moved
        )
        """;

    internal static readonly string MoveSql =
        $"""
        {MovedAndEvent}
        {ReturnMoved}
        """;

    // An attempt's start and its outcome as one move (PairOf), with FusedValues: the outcome's values with the start's
    // condition and what the start sets, so the row goes from PENDING to the outcome's state in one new version. The
    // start's event comes first. The row as it was before comes back first too (its second row is the moved one), for
    // the start's own answer: both CTEs read the statement's snapshot, which the UPDATE's own change is not part of.
    internal static readonly string FusedAttemptSql =
        $"""
        WITH before AS (
            SELECT * FROM executions WHERE id = @Id
        ), moved AS (
            {Update(startToo: true)}
        ), event AS (
            INSERT INTO execution_events (id, execution_id, account_id, type, status, created_at)
            SELECT @StartEventId, id, account_id, @StartEventType, 'PROCESSING', @StartedNow FROM moved
            UNION ALL
            SELECT @EventId, id, account_id, @EventType, @To, @Now FROM moved
        )
        SELECT before.*, false AS has_endpoints, 0 AS fused_row FROM before WHERE EXISTS (SELECT 1 FROM moved)
        UNION ALL
        SELECT moved.*, EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.account_id = moved.account_id AND e.status = 'enabled'), 1 FROM moved
        ORDER BY fused_row
        """;

    // SharedWrites.SettleAsync for every ending of one account in a group, in one statement: release each whole hold,
    // charge what each cost capped at its hold (Execution.ChargedMicros, only for COMPLETED), and write the release and
    // charge ledger entries, each with the balance and held amount just after it, as if settled one by one. It is sent
    // with the group's COMMIT (GroupScope.LockLate): every submission group locks the account row too, and the row stays
    // locked from this statement to the end of the commit's flush. One update of the row per group, not one per ending:
    // each update is a new version of the one hot row, which every later update of it had to walk past.
    private const string SettleSql =
        """
        WITH settled AS (
            UPDATE accounts SET held_micros = held_micros - @HeldTotal, balance_micros = balance_micros - @ChargeTotal
            WHERE id = @AccountId
            RETURNING balance_micros, held_micros
        ), after AS (
            SELECT g.*,
                settled.balance_micros + (sum(g.charge) OVER later - g.charge) AS balance_after,
                settled.held_micros + (sum(g.held) OVER later - g.held) AS held_after
            FROM unnest(@ExecutionIds::text[], @Helds::bigint[], @Charges::bigint[], @ReleaseIds::text[], @ChargeIds::text[], @Nows::bigint[])
                WITH ORDINALITY AS g(execution_id, held, charge, release_id, charge_id, now, ord)
            CROSS JOIN settled
            WINDOW later AS (ORDER BY g.ord DESC)
        ), keys AS (
            -- The keys' share (docs/tenancy.md): every charge counts in its key's spent, and a key with a limit has
            -- its holds taken off. Joined to settled, so a key's row is locked only after the account's.
            UPDATE api_keys SET spent_micros = api_keys.spent_micros + k.charge,
                held_micros = api_keys.held_micros - CASE WHEN api_keys.max_spend_micros IS NULL THEN 0 ELSE k.held END
            FROM (SELECT key_id, sum(held)::bigint AS held, sum(charge)::bigint AS charge
                  FROM unnest(@KeyIds::text[], @Helds::bigint[], @Charges::bigint[]) AS u(key_id, held, charge)
                  WHERE key_id IS NOT NULL GROUP BY key_id) k
            CROSS JOIN settled
            WHERE api_keys.id = k.key_id AND (k.charge > 0 OR api_keys.max_spend_micros IS NOT NULL)
        ), usage AS (
            -- The usage of the endings (docs/api.md#usage, UsageEnding): one upsert of each day, model and key among
            -- them. Joined to settled, so the rows are written under the lock of the account row, which orders every
            -- writer. (No apostrophes in comments here: Statement reads one as the start of a literal.)
            INSERT INTO usage_daily (account_id, day, model, api_key_id, executions, completed, failed, cancelled, expired, charged_micros, overage_micros)
            SELECT @AccountId, u.now / 86400000, u.model, COALESCE(u.key_id, ''), count(*),
                count(*) FILTER (WHERE u.status = 'COMPLETED'), count(*) FILTER (WHERE u.status = 'FAILED'),
                count(*) FILTER (WHERE u.status = 'CANCELLED'), count(*) FILTER (WHERE u.status = 'EXPIRED'),
                sum(u.charge)::bigint, sum(u.overage)::bigint
            FROM unnest(@Nows::bigint[], @Models::text[], @KeyIds::text[], @Statuses::text[], @Charges::bigint[], @Overages::bigint[])
                AS u(now, model, key_id, status, charge, overage)
            CROSS JOIN settled
            GROUP BY u.now / 86400000, u.model, COALESCE(u.key_id, '')
            ON CONFLICT (account_id, day, model, api_key_id) DO UPDATE SET
                executions = usage_daily.executions + excluded.executions,
                completed = usage_daily.completed + excluded.completed,
                failed = usage_daily.failed + excluded.failed,
                cancelled = usage_daily.cancelled + excluded.cancelled,
                expired = usage_daily.expired + excluded.expired,
                charged_micros = usage_daily.charged_micros + excluded.charged_micros,
                overage_micros = usage_daily.overage_micros + excluded.overage_micros
        )
        INSERT INTO ledger_entries (id, account_id, execution_id, kind, amount_micros, balance_micros, held_micros, created_at)
        SELECT release_id, @AccountId, execution_id, 'release', held, balance_after + charge, held_after, now FROM after
        UNION ALL
        SELECT charge_id, @AccountId, execution_id, 'charge', charge, balance_after, held_after, now FROM after WHERE charge > 0
        """;

    /// <summary>One ending's settlement, with its usage (<see cref="UsageEnding"/>: its model, status and overage).</summary>
    private sealed record Settlement(string ExecutionId, long Held, long Charge, string ReleaseId, string ChargeId, long Now, string? KeyId, string Model, string Status, long Overage);

    private static NpgsqlBatchCommand SettleStatement(string accountId, IReadOnlyList<Settlement> settlements) =>
        PostgresDatabase.Statement(SettleSql, new
        {
            AccountId = accountId,
            HeldTotal = settlements.Sum(s => s.Held),
            ChargeTotal = settlements.Sum(s => s.Charge),
            ExecutionIds = settlements.Select(s => s.ExecutionId).ToArray(),
            Helds = settlements.Select(s => s.Held).ToArray(),
            Charges = settlements.Select(s => s.Charge).ToArray(),
            ReleaseIds = settlements.Select(s => s.ReleaseId).ToArray(),
            ChargeIds = settlements.Select(s => s.ChargeId).ToArray(),
            Nows = settlements.Select(s => s.Now).ToArray(),
            KeyIds = settlements.Select(s => s.KeyId).ToArray(),
            Models = settlements.Select(s => s.Model).ToArray(),
            Statuses = settlements.Select(s => s.Status).ToArray(),
            Overages = settlements.Select(s => s.Overage).ToArray(),
        });

    // Fair share (docs/routing.md), as on SQLite (SqliteExecutionStore.ClaimSql): the accounts with PENDING work are
    // walked one index seek each, the front of each one's queue is locked (SKIP LOCKED: nodes claiming at once take
    // different rows), and what was found goes in the order of its place, the account's executions in flight plus its
    // rank in the account's own queue, the oldest of an account first. A capped account gets no more than its cap
    // leaves; its executions in flight are counted after ClaimCapsSql has locked it, in a statement of its own, so
    // that the count sees the claims other nodes committed while this one waited. With one account and no cap
    // nothing is counted and the order is the queue's, as before. An account's calls are counted through
    // ix_executions_account_processing, whose predicate the count repeats as written (migration 0006).
    internal const string ClaimSql =
        """
        WITH RECURSIVE pending AS (
            (SELECT account_id FROM executions WHERE status = 'PENDING' ORDER BY account_id LIMIT 1)
            UNION ALL
            SELECT (SELECT e.account_id FROM executions e WHERE e.status = 'PENDING' AND e.account_id > p.account_id ORDER BY e.account_id LIMIT 1)
            FROM pending p WHERE p.account_id IS NOT NULL
        ), due AS MATERIALIZED (
            SELECT d.id, d.account_id, d.next_attempt_at
            FROM pending p
            CROSS JOIN LATERAL (
                SELECT x.id, x.account_id, x.next_attempt_at FROM executions x
                WHERE x.account_id = p.account_id AND x.status = 'PENDING' AND x.next_attempt_at <= @Now AND x.expires_at > @Now
                  AND (x.lease_expires_at IS NULL OR x.lease_expires_at <= @Now)
                ORDER BY x.next_attempt_at
                LIMIT @max
                FOR UPDATE SKIP LOCKED) d
        ), load AS MATERIALIZED (
            SELECT account_id, max_concurrency,
                CASE WHEN max_concurrency IS NULL AND (SELECT count(DISTINCT account_id) FROM due) < 2 THEN 0
                ELSE (SELECT count(*) FROM executions r WHERE r.account_id = k.account_id AND (r.status || '') = 'PROCESSING')
                   + (SELECT count(*) FROM executions l WHERE l.account_id = k.account_id AND l.status = 'PENDING'
                        AND l.next_attempt_at > @Now AND l.lease_expires_at > @Now)
                END AS in_flight
            FROM (SELECT u.account_id, (SELECT a.max_concurrency FROM accounts a WHERE a.id = u.account_id) AS max_concurrency
                  FROM (SELECT DISTINCT account_id FROM due) u) k
        ), placed AS (
            SELECT due.id, due.next_attempt_at, load.max_concurrency,
                load.in_flight + row_number() OVER (PARTITION BY due.account_id ORDER BY due.next_attempt_at) AS place
            FROM due JOIN load ON load.account_id = due.account_id
        )
        UPDATE executions SET lease_owner = @owner, lease_expires_at = @LeaseUntil, next_attempt_at = @LeaseUntil
        WHERE id = ANY(ARRAY(
            SELECT id FROM placed WHERE max_concurrency IS NULL OR place <= max_concurrency
            ORDER BY place, next_attempt_at
            LIMIT @max))
        RETURNING *
        """;

    // Every capped account, locked for the claim's transaction in id order (no two claims wait for each other in a
    // circle), so that nodes claiming at once count a capped account's executions in flight one after the other.
    internal const string ClaimCapsSql =
        """
        SELECT count(pg_advisory_xact_lock(hashtextextended('modelroute.max_concurrency.' || id, 0)))
        FROM (SELECT id FROM accounts WHERE max_concurrency IS NOT NULL ORDER BY id) capped
        """;
}
