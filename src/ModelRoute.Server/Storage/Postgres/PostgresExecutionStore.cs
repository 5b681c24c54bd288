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
/// Submissions are sent a group at a time (<see cref="PostgresBatchLane{TItem, TResult}"/>), moves are
/// group-committed (<see cref="PostgresDatabase.WriteGroupedAsync"/>), and
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
    WebhookHandoff? handoff = null,
    Routing.DispatchHandoff? dispatch = null) : IExecutionStore
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
                max_cost_micros, created_at, updated_at, expires_at, next_attempt_at, lease_owner, lease_expires_at, api_key_id)
            SELECT @Id, @AccountId, @Model, 'PENDING', @IdempotencyKey, @RequestHash, @Input,
                @EstimatedMicros, @HoldMicros, @Price, @WebhookUrl, @WebhookEvents, @Metadata, @TimeoutSeconds,
                @MaxCostMicros, @Now, @Now, @ExpiresAt, COALESCE(@LeaseExpiresAt::bigint, @Now), @LeaseOwner, @LeaseExpiresAt, @ApiKeyId
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
                @ApiKeyIds::text[]) WITH ORDINALITY
                AS g(id, account_id, model, idempotency_key, request_hash, input, estimated_micros, hold_micros, price, webhook_url,
                    webhook_events, metadata, timeout_seconds, max_cost_micros, now, expires_at, ledger_id, event_id, lease_owner,
                    lease_expires_at, api_key_id, ord)
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
                max_cost_micros, created_at, updated_at, expires_at, next_attempt_at, lease_owner, lease_expires_at, api_key_id)
            SELECT id, account_id, model, 'PENDING', idempotency_key, request_hash, input,
                estimated_micros, hold_micros, price, webhook_url, webhook_events, metadata, timeout_seconds,
                max_cost_micros, now, now, expires_at, COALESCE(lease_expires_at, now), lease_owner, lease_expires_at, api_key_id
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

    // Enough for one commit's worth of submissions at the target rates; the arrays stay small.
    private const int MaxSubmitGroup = 256;

    private readonly PostgresBatchLane<QueuedSubmission, bool> _submissions = db.CreateBatchLane<QueuedSubmission, bool>(
        group => SubmitGroupAsync(db, group), alone => SubmitAloneAsync(db, alone), MaxSubmitGroup);

    public async Task<SubmitOutcome> SubmitAsync(NewExecution x, CancellationToken cancellationToken)
    {
        SubmitOutcome outcome;
        using var lease = SubmissionLease.Reserve(node, dispatch, time, options.Value.Dispatch.LeaseDuration);
        if (x.MaxCostMicros is { } cap && x.HoldMicros > cap)
        {
            // A replay is answered even when the cap would refuse the submission.
            outcome = await db.ReadAsync(c => FindAsync(c, null, x), cancellationToken) ?? new SubmitOutcome(SubmitResult.CostCapExceeded, null);
        }
        else if (x.KeySpendLimited)
        {
            // A key with a spending limit: in a transaction of its own, under the account's lock (docs/tenancy.md).
            var queued = new QueuedSubmission(x, ids.New("txn"), ids.New("evt"), lease.LeaseOwner, lease.LeaseExpiresAt);
            outcome = await db.WriteAsync(async (c, tx) => await SubmitLimitedAsync(c, tx, x, queued.Parameters()), cancellationToken);
        }
        else
        {
            cancellationToken.ThrowIfCancellationRequested();
            var queued = new QueuedSubmission(x, ids.New("txn"), ids.New("evt"), lease.LeaseOwner, lease.LeaseExpiresAt);

            // The answer is built from the submission (NewExecution.ToPending), not read back: a row per
            // submission and its parsing cost the gateway more than anything else in the write.
            outcome = await _submissions.RunAsync(queued)
                ? new SubmitOutcome(SubmitResult.Created, x.ToPending())
                : await db.WriteAsync(async (c, tx) => (await NotCreatedAsync(c, tx, x, queued.Parameters()), true), CancellationToken.None);
        }

        if (outcome.Result == SubmitResult.Created)
        {
            // Handed to this node's dispatcher: no other node could claim it, so none is told.
            var handedOver = lease.HandOver(outcome.Execution!);
            if (!handedOver)
            {
                notifier.Notify(Payload(outcome.Execution!.Id, ExecutionStatus.Pending));
            }

            changes.Published(outcome.Execution!, dispatchToClaim: !handedOver);
        }

        return outcome;
    }

    /// <summary>A submission waiting for its group, with the ids of the ledger entry and event it would write.</summary>
    private sealed record QueuedSubmission(NewExecution X, string LedgerId, string EventId, string? LeaseOwner, long? LeaseExpiresAt)
    {
        /// <summary>The parameters of <see cref="SubmitSql"/>, for a submission written alone.</summary>
        public object Parameters() => new
        {
            X.Id, X.AccountId, X.Model, X.IdempotencyKey, X.RequestHash, X.Input, X.EstimatedMicros, X.HoldMicros,
            Price = StoreJson.Serialize(X.Price), X.WebhookUrl, X.WebhookEvents, X.Metadata, X.TimeoutSeconds,
            X.MaxCostMicros, Now = X.CreatedAt.ToUnixTimeMilliseconds(), ExpiresAt = X.ExpiresAt.ToUnixTimeMilliseconds(),
            LedgerId, LedgerKind = LedgerKinds.Hold, EventId, EventType = ExecutionStatus.Pending.EventType(), LeaseOwner, LeaseExpiresAt, X.ApiKeyId,
        };
    }

    /// <summary>
    /// Which of the group's submissions <see cref="SubmitGroupSql"/> inserted. A second submission of a key already in
    /// the group is left out of the statement and answered after it, as a replay or a reuse of the first.
    /// </summary>
    private static async Task<IReadOnlyList<bool>> SubmitGroupAsync(PostgresDatabase db, IReadOnlyList<QueuedSubmission> group)
    {
        var keys = new HashSet<(string, string)>();
        var sent = group.Where(q => keys.Add((q.X.AccountId, q.X.IdempotencyKey))).ToList();
        var statement = PostgresDatabase.Statement(SubmitGroupSql, new
        {
            Ids = sent.Select(q => q.X.Id).ToArray(),
            AccountIds = sent.Select(q => q.X.AccountId).ToArray(),
            Models = sent.Select(q => q.X.Model).ToArray(),
            IdempotencyKeys = sent.Select(q => q.X.IdempotencyKey).ToArray(),
            RequestHashes = sent.Select(q => q.X.RequestHash).ToArray(),
            Inputs = sent.Select(q => q.X.Input).ToArray(),
            EstimatedMicros = sent.Select(q => q.X.EstimatedMicros).ToArray(),
            HoldMicros = sent.Select(q => q.X.HoldMicros).ToArray(),
            Prices = sent.Select(q => StoreJson.Serialize(q.X.Price)).ToArray(),
            WebhookUrls = sent.Select(q => q.X.WebhookUrl).ToArray(),
            WebhookEvents = sent.Select(q => q.X.WebhookEvents).ToArray(),
            Metadata = sent.Select(q => q.X.Metadata).ToArray(),
            TimeoutSeconds = sent.Select(q => (long)q.X.TimeoutSeconds).ToArray(),
            MaxCostMicros = sent.Select(q => q.X.MaxCostMicros).ToArray(),
            Nows = sent.Select(q => q.X.CreatedAt.ToUnixTimeMilliseconds()).ToArray(),
            ExpiresAts = sent.Select(q => q.X.ExpiresAt.ToUnixTimeMilliseconds()).ToArray(),
            LedgerIds = sent.Select(q => q.LedgerId).ToArray(),
            EventIds = sent.Select(q => q.EventId).ToArray(),
            LeaseOwners = sent.Select(q => q.LeaseOwner).ToArray(),
            LeaseExpiresAts = sent.Select(q => q.LeaseExpiresAt).ToArray(),
            ApiKeyIds = sent.Select(q => q.X.ApiKeyId).ToArray(),
            LedgerKind = LedgerKinds.Hold,
            EventType = ExecutionStatus.Pending.EventType(),
        });
        var created = await db.WriteStatementAsync(async c =>
        {
            await using var batch = new NpgsqlBatch(c);
            batch.BatchCommands.Add(statement);
            await using var reader = await batch.ExecuteReaderAsync(CancellationToken.None);
            var inserted = new HashSet<string>(StringComparer.Ordinal);
            while (await reader.ReadAsync(CancellationToken.None))
            {
                inserted.Add(reader.GetString(0));
            }

            return inserted;
        }, CancellationToken.None);
        return [.. group.Select(q => created.Contains(q.X.Id))];
    }

    /// <summary>One submission in a statement of its own, when its group failed.</summary>
    private static Task<bool> SubmitAloneAsync(PostgresDatabase db, QueuedSubmission queued) =>
        db.WriteStatementAsync(async c => await c.QueryFirstOrDefaultAsync<bool>(SubmitSql, queued.Parameters()), CancellationToken.None);

    /// <summary>
    /// A submission made with a key that has a spending limit. The account's row is locked first, as every settlement
    /// locks it before its keys' rows, then the key's: no submission or settlement of the account can move the key's
    /// figures between the check and the hold. Refusals in order: replay or reuse, balance, then the key's limit.
    /// </summary>
    private static async Task<(SubmitOutcome, bool)> SubmitLimitedAsync(NpgsqlConnection c, NpgsqlTransaction tx, NewExecution x, object parameters)
    {
        while (true)
        {
            var covered = await c.QueryFirstOrDefaultAsync<bool>(
                "SELECT balance_micros - held_micros >= @HoldMicros FROM accounts WHERE id = @AccountId FOR UPDATE", new { x.AccountId, x.HoldMicros }, tx);
            if (await FindAsync(c, tx, x) is { } existing)
            {
                return (existing, false);
            }

            if (!covered)
            {
                return (new SubmitOutcome(SubmitResult.InsufficientBalance, null), false);
            }

            var room = await c.QueryFirstOrDefaultAsync<bool>(
                "SELECT max_spend_micros - held_micros - spent_micros >= @HoldMicros FROM api_keys WHERE id = @ApiKeyId FOR UPDATE", new { x.ApiKeyId, x.HoldMicros }, tx);
            if (!room)
            {
                return (new SubmitOutcome(SubmitResult.KeySpendLimitExceeded, null), false);
            }

            // Nothing inserted: a concurrent submission with the same key committed first; the next round answers it.
            if (await c.QueryFirstOrDefaultAsync<bool>(SubmitSql, parameters, tx))
            {
                await c.ExecuteAsync("UPDATE api_keys SET held_micros = held_micros + @HoldMicros WHERE id = @ApiKeyId", new { x.ApiKeyId, x.HoldMicros }, tx);
                return (new SubmitOutcome(SubmitResult.Created, x.ToPending()), true);
            }
        }
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
        var parameters = TransitionValues.For(t, now) with { EventId = eventId, EventType = t.To.EventType() };
        var pair = PairOf(t, parameters);

        // Grouped: an ending settles the hold on the account's balance row, and its lane keeps endings
        // apart from the other moves, which touch no balance row and commit in a lane of their own,
        // beside it, instead of waiting for a group that waits for an account's lock. A pipelined attempt
        // (its start and its outcome queued together) stays in one lane, whose queue order is commit order,
        // and when both are in one group they are one statement (see PairOf).
        var (execution, webhooks) = await db.WriteGroupedAsync(
            t.To.IsTerminal() || t.Pipelined ? GroupedLane.Balances : GroupedLane.Moves,
            PostgresDatabase.Statement(MoveSql, parameters),
            ReadMovedAsync,
            (moved, scope) =>
            {
                var (changed, hasEndpoints) = (moved.Row?.ToExecution(), moved.Row?.HasEndpoints ?? false);
                if (pair is { Leads: true, Partner: not null } && changed is not null)
                {
                    // The row now holds the outcome too: the start's answer (and its event's payload) is the row as
                    // the start alone would have left it.
                    Interlocked.Increment(ref _fusedAttempts);
                    changed = t.StartedFrom(moved.Before!.ToExecution(), DateTimeOffset.FromUnixTimeMilliseconds(now));
                }

                return FinishMoveAsync(changed, hasEndpoints, scope, t.To.EventType(), eventId, now);
            },
            cancellationToken,
            pair);

        if (execution is not null)
        {
            notifier.Notify(Payload(execution.Id, t.To));
            if (webhooks.NeedClaim)
            {
                notifier.Notify(PostgresDatabase.WebhooksPayload); // Any node's worker may take them.
            }

            handoff?.Offer(webhooks.Leased);
            changes.Published(execution, webhooks.NeedClaim);
        }

        return execution;
    }

    private long _fusedAttempts;

    /// <summary>Attempts whose start and outcome were written as one statement (<see cref="PairOf"/>), since the start.</summary>
    internal long FusedAttempts => Interlocked.Read(ref _fusedAttempts);

    /// <summary>
    /// A pipelined attempt's start and the outcome queued behind it (same execution, same lease owner) are a
    /// <see cref="WritePair"/>: in one group they are one UPDATE, so the row gets one new version (with an entry in each
    /// of its indexes) instead of two, and PostgreSQL runs one statement. Both events are still written, in order, and
    /// each write still answers as if alone. Only an outcome whose conditions the start implies is paired: it moves on
    /// from PROCESSING, under the same lease, and counts no attempt of its own; the start must then have applied for
    /// it to apply, so the one statement applies both or neither, as the two would.
    /// </summary>
    private WritePair? PairOf(ExecutionTransition t, TransitionValues values)
    {
        if (!t.Pipelined || t.LeaseOwner is not { } owner || t.AccountId is not null || t.LeaseExpiredBy is not null)
        {
            return null;
        }

        var key = t.ExecutionId + " " + owner;
        if (t.To == ExecutionStatus.Processing)
        {
            return t.IncrementAttempts && t.Attempt is null && t.Error is null && t.ProviderJobId is null && t.From.SequenceEqual([ExecutionStatus.Pending])
                ? new WritePair(key, leads: true, values, FusedAttemptStatement)
                : null;
        }

        return t.From.Contains(ExecutionStatus.Processing) && !t.IncrementAttempts && !t.UndoAttempt
            ? new WritePair(key, leads: false, values)
            : null;
    }

    /// <summary>The values of <see cref="FusedAttemptSql"/>: the outcome's, with what the start sets and checks.</summary>
    internal static TransitionValues FusedValues(TransitionValues start, TransitionValues outcome) => outcome with
    {
        From = start.From,
        LeaseOwner = start.LeaseOwner,
        Provider = outcome.Provider ?? start.Provider,
        ProviderModel = outcome.ProviderModel ?? start.ProviderModel,
        CallbackTokenHash = outcome.CallbackTokenHash ?? start.CallbackTokenHash,
        AttemptIncrement = start.AttemptIncrement + outcome.AttemptIncrement,
        NextAttemptAt = outcome.NextAttemptAt ?? start.NextAttemptAt,
        StartedNow = start.Now,
        StartEventId = start.EventId,
        StartEventType = start.EventType,
    };

    /// <summary>The moved row, and for a pair written as one statement the row as it was before (to answer the start).</summary>
    private sealed record MovedRows(ExecutionRow? Row, ExecutionRow? Before);

    private static async Task<MovedRows> ReadMovedAsync(NpgsqlDataReader reader)
    {
        var parse = reader.GetRowParser<ExecutionRow>();
        ExecutionRow? first = null;
        ExecutionRow? last = null;
        while (await reader.ReadAsync(CancellationToken.None))
        {
            last = parse(reader);
            first ??= last;
        }

        return new MovedRows(last, ReferenceEquals(first, last) ? null : first);
    }

    /// <summary>A pair joined in a group (<see cref="PairOf"/>), as one <see cref="FusedAttemptSql"/>.</summary>
    private static NpgsqlBatchCommand FusedAttemptStatement(object leader, object follower) =>
        PostgresDatabase.Statement(FusedAttemptSql, FusedValues((TransitionValues)leader, (TransitionValues)follower));

    /// <summary>
    /// The outbox for a move that happened: a delivery to the submission's webhook_url is queued for the
    /// group's last round trip; with enabled endpoints on the account, SharedWrites picks destinations.
    /// A delivery due at once is written leased to this node's worker while it has room, and handed to
    /// it after the commit (<see cref="WebhookHandoff"/>), as on SQLite: no claim between the commit and
    /// the send. If this node dies first, the lease runs out and any node claims it.
    /// </summary>
    private async Task<(Execution? Changed, EnqueuedWebhooks Webhooks)> FinishMoveAsync(
        Execution? changed, bool hasEndpoints, PostgresDatabase.GroupScope scope, string type, string eventId, long now)
    {
        if (changed is null)
        {
            return (null, EnqueuedWebhooks.None);
        }

        if (changed.Status.IsTerminal())
        {
            var charge = changed.Status == ExecutionStatus.Completed ? changed.ChargedMicros ?? 0 : 0;
            scope.LockLate(
                changed.AccountId,
                new Settlement(changed.Id, changed.HeldMicros, charge, ids.New("txn"), ids.New("txn"), now, changed.ApiKeyId),
                SettleStatement);
        }

        var webhooks = options.Value.Webhooks;
        var firstDelay = webhooks.Schedule[0];
        // The lease outlives the send timeout, as a claim's does.
        var lease = node is not null && handoff is { HasRoom: true }
            ? (node.Id, now + (long)(webhooks.Timeout + options.Value.Dispatch.LeaseDuration).TotalMilliseconds)
            : ((string Owner, long Until)?)null;
        var due = SharedWrites.DeliveriesDue(hasEndpoints, changed.WebhookUrl, changed.WebhookEvents, type);
        if (due.ToEndpoints)
        {
            return (changed, await SharedWrites.EnqueueWebhooksAsync(scope.Connection, scope.Transaction, ids, changed, eventId, type, now, firstDelay, due, lease));
        }

        if (!due.ToSubmission)
        {
            return (changed, EnqueuedWebhooks.None);
        }

        // What SharedWrites.EnqueueWebhooksAsync writes for a webhook_url when the account has no endpoints.
        var owner = firstDelay <= TimeSpan.Zero ? lease?.Owner : null;
        var id = ids.New("whd");
        var payload = WebhookPayloads.Build(eventId, type, DateTimeOffset.FromUnixTimeMilliseconds(now), changed, thin: false);
        scope.LaterMerged(
            "webhook_deliveries",
            new SubmissionDelivery(id, eventId, changed.AccountId, changed.Id, changed.WebhookUrl!, type, payload, now + (long)firstDelay.TotalMilliseconds, now, owner, owner is null ? null : lease?.Until),
            DeliveriesStatement);
        if (owner is null)
        {
            return (changed, new EnqueuedWebhooks([], 1));
        }

        var at = DateTimeOffset.FromUnixTimeMilliseconds(now);
        return (changed, new EnqueuedWebhooks([new WebhookDelivery(id, eventId, changed.AccountId, changed.Id, null, changed.WebhookUrl!, type, payload, DeliveryStatuses.Pending, 0, at, null, null, at, at, null)], 1));
    }

    /// <summary>A delivery to a submission's webhook_url, written with the group's commit.</summary>
    private sealed record SubmissionDelivery(
        string Id, string EventId, string AccountId, string ExecutionId, string Url, string Type, string Payload, long Due, long Now, string? Owner, long? Until);

    // The group's deliveries to webhook_urls, as one insert.
    private const string InsertDeliveriesSql =
        """
        INSERT INTO webhook_deliveries (id, event_id, account_id, execution_id, endpoint_id, url, event_type, payload, status, next_attempt_at, created_at, updated_at, lease_owner, lease_expires_at)
        SELECT id, event_id, account_id, execution_id, NULL, url, event_type, payload, 'pending', due, now, now, owner, until
        FROM unnest(@Ids::text[], @EventIds::text[], @AccountIds::text[], @ExecutionIds::text[], @Urls::text[], @Types::text[], @Payloads::text[],
            @Dues::bigint[], @Nows::bigint[], @Owners::text[], @Untils::bigint[])
            AS d(id, event_id, account_id, execution_id, url, event_type, payload, due, now, owner, until)
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
        )
        INSERT INTO ledger_entries (id, account_id, execution_id, kind, amount_micros, balance_micros, held_micros, created_at)
        SELECT release_id, @AccountId, execution_id, 'release', held, balance_after + charge, held_after, now FROM after
        UNION ALL
        SELECT charge_id, @AccountId, execution_id, 'charge', charge, balance_after, held_after, now FROM after WHERE charge > 0
        """;

    private sealed record Settlement(string ExecutionId, long Held, long Charge, string ReleaseId, string ChargeId, long Now, string? KeyId);

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
        });

    /// <summary>What <see cref="PostgresNotificationListener"/> reads: "&lt;execution id&gt; &lt;STATUS&gt;".</summary>
    internal static string Payload(string executionId, ExecutionStatus status) => executionId + " " + status.ToWire();

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

    // A claim also moves next_attempt_at to the lease's end (as a submission stored leased does, and a renewal of a
    // PENDING lease): a leased row is next due when its lease runs out, so it waits at the back of its account's queue
    // instead of at the front, where every claim read past it. Under load a thousand rows claimed but not yet started
    // were read, and filtered out, by each claim: most of its time. PostgresDatabase.ClaimAsync keeps the planner to
    // walking the indexes in order.
    public async Task<IReadOnlyList<Execution>> ClaimDueAsync(string owner, int max, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken)
    {
        var rows = await db.ClaimAsync<ExecutionRow>(
            PostgresDatabase.Statement(ClaimSql, new { owner, max, Now = now.ToUnixTimeMilliseconds(), LeaseUntil = leaseUntil.ToUnixTimeMilliseconds() }),
            cancellationToken,
            new NpgsqlBatchCommand(ClaimCapsSql));
        return [.. rows.Select(r => r.ToExecution())];
    }

    // By id, the status compared through an expression: see UpdateSql.
    internal const string ReleaseClaimSql =
        """
        UPDATE executions SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = @NotBefore
        WHERE id = @id AND (status || '') = 'PENDING' AND lease_owner = @owner
        """;

    internal const string RenewLeaseSql =
        "UPDATE executions SET lease_expires_at = @Until, next_attempt_at = CASE WHEN status = 'PENDING' THEN @Until ELSE next_attempt_at END WHERE id = @id AND lease_owner = @owner AND (status || '') IN ('PENDING', 'PROCESSING')";

    public Task ReleaseClaimAsync(string id, string owner, DateTimeOffset notBefore, CancellationToken cancellationToken) =>
        db.WriteStatementAsync(async c =>
        {
            var n = await c.ExecuteAsync(ReleaseClaimSql, new { id, owner, NotBefore = notBefore.ToUnixTimeMilliseconds() });
            return n;
        }, cancellationToken);

    public Task<bool> RenewLeaseAsync(string id, string owner, DateTimeOffset leaseUntil, CancellationToken cancellationToken) =>
        db.WriteStatementAsync(async c =>
        {
            var n = await c.ExecuteAsync(RenewLeaseSql, new { id, owner, Until = leaseUntil.ToUnixTimeMilliseconds() });
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
