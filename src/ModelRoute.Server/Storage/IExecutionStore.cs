namespace ModelRoute.Server.Storage;

/// <summary>A submission ready to store: validated, priced, and with its hold computed.</summary>
public sealed record NewExecution(
    string Id,
    string AccountId,
    string Model,
    string IdempotencyKey,
    string RequestHash,
    string Input,
    long EstimatedMicros,
    long HoldMicros,
    Price Price,
    string? WebhookUrl,
    string? WebhookEvents,
    string? Metadata,
    int TimeoutSeconds,
    long? MaxCostMicros,
    DateTimeOffset CreatedAt,
    DateTimeOffset ExpiresAt,
    string? ApiKeyId = null,
    bool KeySpendLimited = false,
    string? TraceParent = null)
{
    /// <summary>
    /// The execution as its row reads once stored (times kept to the millisecond, as the stores keep
    /// them), so that a store need not read back what it has just written.
    /// </summary>
    public Execution ToPending()
    {
        var created = DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt.ToUnixTimeMilliseconds());
        return new Execution
        {
            Id = Id,
            AccountId = AccountId,
            Model = Model,
            Status = ExecutionStatus.Pending,
            IdempotencyKey = IdempotencyKey,
            RequestHash = RequestHash,
            Input = Input,
            EstimatedMicros = EstimatedMicros,
            HeldMicros = HoldMicros,
            Price = Price,
            WebhookUrl = WebhookUrl,
            WebhookEvents = WebhookEvents,
            Metadata = Metadata,
            TimeoutSeconds = TimeoutSeconds,
            MaxCostMicros = MaxCostMicros,
            CreatedAt = created,
            UpdatedAt = created,
            ExpiresAt = DateTimeOffset.FromUnixTimeMilliseconds(ExpiresAt.ToUnixTimeMilliseconds()),
            NextAttemptAt = created,
            ApiKeyId = ApiKeyId,
            TraceParent = TraceParent,
        };
    }
}

public enum SubmitResult
{
    Created,
    Replayed,
    KeyReused,
    CostCapExceeded,
    InsufficientBalance,
    KeySpendLimitExceeded,
}

/// <summary>
/// The API key a submission is made with: its execution records it, and when the key has a <c>max_spend_usd</c>
/// (<paramref name="SpendLimited"/>) the submission holds against it too (docs/tenancy.md).
/// </summary>
public readonly record struct SubmittingKey(string? Id, bool SpendLimited);

public sealed record SubmitOutcome(SubmitResult Result, Execution? Execution);

/// <summary>What GET /v1/executions asks for (docs/api.md#list-executions); every filter is applied only when given.</summary>
public sealed record ExecutionQuery(ExecutionStatus? Status, string? Model, DateTimeOffset? CreatedAfter, string? Before, int Limit)
{
    public DateTimeOffset? CreatedBefore { get; init; }

    public string? IdempotencyKey { get; init; }

    /// <summary>Top-level metadata keys whose value must be exactly this string, all of them (at most three).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Metadata { get; init; } = [];
}

/// <summary>
/// Durable executions as the gateway uses them: insert with a hold, conditional state moves that settle money, leases
/// for dispatch. Every write is atomic; no method lets a terminal execution change. Implemented by
/// <see cref="Executions.ExecutionCommits"/> over the engine's <see cref="ISqlExecutionStore"/>: the two writes below
/// also run their after-commit steps there (hand-overs to this node's workers, other nodes told, waiters woken).
/// </summary>
public interface IExecutionStore : IExecutionQueries
{
    /// <summary>
    /// Inserts the execution and places its hold in one transaction, or answers why not. An existing
    /// execution with the same key is answered first (replay or reuse), then the cost cap, then the balance, then the
    /// API key's spending limit (only for a key with one).
    /// </summary>
    Task<SubmitOutcome> SubmitAsync(NewExecution execution, CancellationToken cancellationToken);

    /// <summary>Applies the move if the execution is still where the transition expects it; null when it is not.</summary>
    Task<Execution?> TransitionAsync(ExecutionTransition transition, CancellationToken cancellationToken);
}

/// <summary>
/// Reads, claims, lease renewals and purges of executions: nothing runs after their commit, so they are the same on an
/// engine's store and through <see cref="Executions.ExecutionCommits"/>.
/// </summary>
public interface IExecutionQueries
{
    /// <summary>The execution; <paramref name="accountId"/> null means any account (internal callers).</summary>
    Task<Execution?> GetAsync(string id, string? accountId, CancellationToken cancellationToken);

    /// <summary>The account's execution with this idempotency key, if any.</summary>
    Task<Execution?> FindByIdempotencyKeyAsync(string accountId, string idempotencyKey, CancellationToken cancellationToken);

    /// <summary>Newest first; <see cref="ExecutionQuery.Before"/> is the id to continue after.</summary>
    Task<IReadOnlyList<Execution>> ListAsync(string accountId, ExecutionQuery query, CancellationToken cancellationToken);

    /// <summary>Leases up to <paramref name="max"/> due PENDING executions to <paramref name="owner"/>.</summary>
    Task<IReadOnlyList<Execution>> ClaimDueAsync(string owner, int max, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken);

    /// <summary>Gives a leased PENDING execution back without an attempt, to be retried at <paramref name="notBefore"/>.</summary>
    Task ReleaseClaimAsync(string id, string owner, DateTimeOffset notBefore, CancellationToken cancellationToken);

    /// <summary>Extends a live worker's lease; false when the lease is no longer its own.</summary>
    Task<bool> RenewLeaseAsync(string id, string owner, DateTimeOffset leaseUntil, CancellationToken cancellationToken);

    /// <summary>Takes AWAITING_WEBHOOK executions whose poll is due, pushing their next poll to <paramref name="nextPollAt"/>.</summary>
    Task<IReadOnlyList<Execution>> ClaimDuePollsAsync(int max, DateTimeOffset now, DateTimeOffset nextPollAt, CancellationToken cancellationToken);

    /// <summary>Ids of non-terminal executions whose deadline has passed.</summary>
    Task<IReadOnlyList<string>> ListExpiredAsync(DateTimeOffset now, int max, CancellationToken cancellationToken);

    /// <summary>PROCESSING executions whose worker's lease ran out (a crashed or stopped node).</summary>
    Task<IReadOnlyList<Execution>> ListAbandonedAsync(DateTimeOffset now, int max, CancellationToken cancellationToken);

    /// <summary>
    /// Deletes up to <paramref name="max"/> executions that ended before <paramref name="endedBefore"/>,
    /// with their events and webhook deliveries; their idempotency keys are free again. Ledger entries stay. Returns each
    /// deleted execution with the stores holding its artifacts, so that only those are asked to delete them.
    /// </summary>
    Task<IReadOnlyList<PurgedExecution>> PurgeAsync(DateTimeOffset endedBefore, int max, CancellationToken cancellationToken);

    /// <summary>Status-change events of one execution after <paramref name="afterSequence"/>, in order.</summary>
    Task<IReadOnlyList<ExecutionEvent>> ListEventsAsync(string executionId, long afterSequence, CancellationToken cancellationToken);

    /// <summary>
    /// Up to <paramref name="limit"/> status-change events of the account's executions after <paramref name="afterSequence"/>,
    /// in sequence order: the account's event feed (docs/api.md#the-account-event-feed).
    /// </summary>
    Task<IReadOnlyList<ExecutionEvent>> ListAccountEventsAsync(string accountId, long afterSequence, int limit, CancellationToken cancellationToken);

    /// <summary>The sequence of the account's newest event; 0 when it has none.</summary>
    Task<long> LastAccountEventAsync(string accountId, CancellationToken cancellationToken);
}

/// <summary>
/// An execution a purge deleted, and the artifact stores its outputs are kept in (<see cref="ArtifactStoreKinds"/>;
/// empty when it kept none, so retention asks no store about it: docs/artifacts.md#s3-compatible-storage).
/// </summary>
public sealed record PurgedExecution(string Id, IReadOnlyList<string> ArtifactStores);
