using System.Data.Common;
using Dapper;
using ModelRoute.Server.Webhooks;
using Npgsql;

namespace ModelRoute.Server.Storage.Postgres;

/// <summary>
/// Executions, holds and the outbox on PostgreSQL, with the semantics of the SQLite store. Every
/// state move is one conditional UPDATE; PostgreSQL re-checks its WHERE against the latest row
/// version after waiting for a concurrent writer, so a terminal execution never changes again.
/// Submissions are sent a group at a time (<see cref="PostgresBatchLane{TItem, TResult}"/>), moves are
/// group-committed (<see cref="PostgresDatabase.WriteGroupedAsync"/>). What follows a commit (hand-overs,
/// telling the other nodes, wake-ups) is <see cref="ExecutionCommits"/>'s.
/// </summary>
public sealed partial class PostgresExecutionStore(
    PostgresDatabase db,
    IdGenerator ids,
    IOptions<ModelRouteOptions> options,
    TimeProvider time)
    : ExecutionQueries(
        (name, type) => "@" + name + "::" + type + " IS NULL",
        "status IN ('PENDING', 'PROCESSING', 'AWAITING_WEBHOOK')",
        "status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED')",
        column => column + " = ANY(@ids)",
        i => $"json_typeof(executions.metadata::json -> @MetaKey{i}) = 'string' AND executions.metadata::json ->> @MetaKey{i} = @MetaValue{i}"),
    ISqlExecutionStore
{
    // Enough for one commit's worth of submissions at the target rates; the arrays stay small.
    private const int MaxSubmitGroup = 256;

    private readonly PostgresBatchLane<QueuedSubmission, bool> _submissions = db.CreateBatchLane<QueuedSubmission, bool>(
        group => SubmitGroupAsync(db, group), alone => SubmitAloneAsync(db, alone), MaxSubmitGroup);

    public async Task<SubmitOutcome> SubmitAsync(NewExecution x, LeaseTerms? lease, CancellationToken cancellationToken)
    {
        if (x.MaxCostMicros is { } cap && x.HoldMicros > cap)
        {
            // A replay is answered even when the cap would refuse the submission.
            return await db.ReadAsync(c => ExistingAsync(c, null, x), cancellationToken) ?? new SubmitOutcome(SubmitResult.CostCapExceeded, null);
        }

        var queued = new QueuedSubmission(x, ids.New("txn"), ids.New("evt"), lease?.Owner, lease?.ExpiresAt);
        if (x.KeySpendLimited)
        {
            // A key with a spending limit: in a transaction of its own, under the account's lock (docs/tenancy.md).
            return await db.WriteAsync(async (c, tx) => await SubmitLimitedAsync(c, tx, x, queued.Parameters()), cancellationToken);
        }

        cancellationToken.ThrowIfCancellationRequested();

        // The answer is built from the submission (NewExecution.ToPending), not read back: a row per
        // submission and its parsing cost the gateway more than anything else in the write.
        return await _submissions.RunAsync(queued)
            ? new SubmitOutcome(SubmitResult.Created, x.ToPending())
            : await db.WriteAsync(async (c, tx) => (await NotCreatedAsync(c, tx, x, queued.Parameters()), true), CancellationToken.None);
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
            LedgerId, LedgerKind = LedgerKinds.Hold, EventId, EventType = ExecutionStatus.Pending.EventType(), LeaseOwner, LeaseExpiresAt, X.ApiKeyId, X.TraceParent,
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
            TraceParents = sent.Select(q => q.X.TraceParent).ToArray(),
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
            if (await ExistingAsync(c, tx, x) is { } existing)
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
            if (await ExistingAsync(c, tx, x) is { } existing)
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

    private protected override Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> read, CancellationToken cancellationToken) =>
        db.ReadAsync(read, cancellationToken);

    private protected override Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<(T Result, bool Commit)>> write, CancellationToken cancellationToken) =>
        db.WriteAsync(write, cancellationToken);

    public Task<StoredTransition> TransitionAsync(ExecutionTransition t, DeliveryLeaseTerms? deliveryLease, CancellationToken cancellationToken)
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
        return db.WriteGroupedAsync(
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
                    changed = t.StartedFrom(moved.Before!.ToExecution(), DateTimeOffset.FromUnixTimeMilliseconds(now));
                }

                return FinishMoveAsync(changed, hasEndpoints, scope, t.To.EventType(), eventId, now, deliveryLease);
            },
            cancellationToken,
            pair);
    }

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
    /// A delivery due at once is written leased to <paramref name="deliveryLease"/>'s owner when given (this node's
    /// worker, which ExecutionCommits hands it to after the commit), as on SQLite.
    /// </summary>
    private async Task<StoredTransition> FinishMoveAsync(
        Execution? changed, bool hasEndpoints, PostgresDatabase.GroupScope scope, string type, string eventId, long now, DeliveryLeaseTerms? deliveryLease)
    {
        if (changed is null)
        {
            return default;
        }

        if (changed.Status.IsTerminal())
        {
            var usage = UsageEnding.Of(changed.AccountId, changed.Model, changed.ApiKeyId, changed.Status, changed.HeldMicros, changed.ActualMicros, now);
            scope.LockLate(
                changed.AccountId,
                new Settlement(changed.Id, changed.HeldMicros, usage.Charge, ids.New("txn"), ids.New("txn"), now, changed.ApiKeyId, changed.Model, changed.Status.ToWire(), usage.Overage),
                SettleStatement);
        }

        var webhooks = options.Value.Webhooks;
        var firstDelay = webhooks.Schedule[0];
        var lease = deliveryLease is { } l ? (l.Owner, now + (long)l.Length.TotalMilliseconds) : ((string Owner, long Until)?)null;
        var due = SharedWrites.DeliveriesDue(hasEndpoints, changed.WebhookUrl, changed.WebhookEvents, type);
        if (due.ToEndpoints)
        {
            return new StoredTransition(changed, await SharedWrites.EnqueueWebhooksAsync(scope.Connection, scope.Transaction, ids, changed, eventId, type, now, firstDelay, due, lease));
        }

        if (!due.ToSubmission)
        {
            return new StoredTransition(changed, EnqueuedWebhooks.None);
        }

        // What SharedWrites.EnqueueWebhooksAsync writes for a webhook_url when the account has no endpoints.
        var owner = firstDelay <= TimeSpan.Zero ? lease?.Owner : null;
        var id = ids.New("whd");
        var payload = WebhookPayloads.Build(eventId, type, DateTimeOffset.FromUnixTimeMilliseconds(now), changed, thin: false);
        scope.LaterMerged(
            "webhook_deliveries",
            new SubmissionDelivery(id, eventId, changed.AccountId, changed.Id, changed.WebhookUrl!, type, payload, now + (long)firstDelay.TotalMilliseconds, now, owner, owner is null ? null : lease?.Until, changed.TraceParent),
            DeliveriesStatement);
        if (owner is null)
        {
            return new StoredTransition(changed, new EnqueuedWebhooks([], 1));
        }

        var at = DateTimeOffset.FromUnixTimeMilliseconds(now);
        return new StoredTransition(changed, new EnqueuedWebhooks([new WebhookDelivery(id, eventId, changed.AccountId, changed.Id, null, changed.WebhookUrl!, type, payload, DeliveryStatuses.Pending, 0, at, null, null, at, at, null, changed.TraceParent)], 1));
    }

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

}
