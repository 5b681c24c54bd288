namespace ModelRoute.Server.Executions;

/// <summary>
/// A conditional move of one execution: the store applies it only if the execution is in one of
/// <see cref="From"/> (and, where set, leased by <see cref="LeaseOwner"/> or owned by
/// <see cref="AccountId"/>). Terminal moves settle money in the same transaction.
/// </summary>
public sealed record ExecutionTransition(string ExecutionId, ExecutionStatus To, IReadOnlyCollection<ExecutionStatus> From)
{
    public string? LeaseOwner { get; init; }
    public string? AccountId { get; init; }
    public string? Output { get; init; }
    public IReadOnlyList<Artifact>? Artifacts { get; init; }
    public ExecutionError? Error { get; init; }
    public Usage? Usage { get; init; }
    public long? ActualMicros { get; init; }
    public string? Provider { get; init; }
    public string? ProviderModel { get; init; }
    public string? ProviderJobId { get; init; }
    public string? CallbackTokenHash { get; init; }
    public DateTimeOffset? NextAttemptAt { get; init; }
    public DateTimeOffset? NextPollAt { get; init; }
    public DateTimeOffset? LeaseExpiresAt { get; init; }
    public AttemptRecord? Attempt { get; init; }
    public bool IncrementAttempts { get; init; }

    /// <summary>Keeps a provider's result whose outputs are still to be copied (<see cref="Execution.PendingResult"/>); a terminal move clears it.</summary>
    public string? PendingResult { get; init; }

    /// <summary>
    /// Queued behind a write of this node's for the same execution that has not committed yet (an attempt's start the
    /// dispatcher did not wait for, see <see cref="Providers.IProviderAdapter.MayCallBack"/>): the store applies it
    /// after that write. SQLite's single queue keeps that order; PostgreSQL writes both in the lane of endings.
    /// </summary>
    public bool Pipelined { get; init; }

    /// <summary>Takes back the attempt <see cref="StartAttempt"/> counted, for a call that never reached the provider.</summary>
    public bool UndoAttempt { get; init; }

    /// <summary>Only if the current lease ran out by then: taking work from a worker that stopped renewing.</summary>
    public DateTimeOffset? LeaseExpiredBy { get; init; }

    public static ExecutionTransition StartAttempt(string id, string owner, DateTimeOffset leaseUntil, string provider, string providerModel, string callbackTokenHash) =>
        new(id, ExecutionStatus.Processing, [ExecutionStatus.Pending])
        {
            LeaseOwner = owner,
            LeaseExpiresAt = leaseUntil,
            Provider = provider,
            ProviderModel = providerModel,
            CallbackTokenHash = callbackTokenHash,
            IncrementAttempts = true,
        };

    /// <summary>
    /// The execution as this attempt's start (<see cref="StartAttempt"/>) leaves <paramref name="before"/> when applied
    /// at <paramref name="now"/>: what a store's conditional update returns for it.
    /// </summary>
    public Execution StartedFrom(Execution before, DateTimeOffset now) => before with
    {
        Status = ExecutionStatus.Processing,
        Provider = Provider ?? before.Provider,
        ProviderModel = ProviderModel ?? before.ProviderModel,
        ProviderJobId = null,
        CallbackTokenHash = CallbackTokenHash ?? before.CallbackTokenHash,
        Attempts = before.Attempts + (IncrementAttempts ? 1 : 0),
        StartedAt = before.StartedAt ?? now,
        UpdatedAt = now,
        NextPollAt = null,
        LeaseOwner = LeaseOwner ?? before.LeaseOwner, // a start applies only under its own lease
        LeaseExpiresAt = LeaseExpiresAt ?? before.LeaseExpiresAt,
    };

    public static ExecutionTransition AwaitCallback(string id, string owner, string providerJobId, DateTimeOffset nextPollAt, AttemptRecord attempt) =>
        new(id, ExecutionStatus.AwaitingWebhook, [ExecutionStatus.Processing])
        {
            LeaseOwner = owner,
            ProviderJobId = providerJobId,
            NextPollAt = nextPollAt,
            Attempt = attempt,
        };

    public static ExecutionTransition Retry(string id, IReadOnlyCollection<ExecutionStatus> from, DateTimeOffset nextAttemptAt, ExecutionError? error, AttemptRecord? attempt, string? owner = null) =>
        new(id, ExecutionStatus.Pending, from)
        {
            LeaseOwner = owner,
            NextAttemptAt = nextAttemptAt,
            Error = error,
            Attempt = attempt,
        };

    public static ExecutionTransition Complete(string id, IReadOnlyCollection<ExecutionStatus> from, string output, IReadOnlyList<Artifact> artifacts, Usage usage, long actualMicros, AttemptRecord? attempt, string? owner = null) =>
        new(id, ExecutionStatus.Completed, from)
        {
            LeaseOwner = owner,
            Output = output,
            Artifacts = artifacts,
            Usage = usage,
            ActualMicros = actualMicros,
            Attempt = attempt,
        };

    public static ExecutionTransition Fail(string id, IReadOnlyCollection<ExecutionStatus> from, ExecutionError error, AttemptRecord? attempt, string? owner = null) =>
        new(id, ExecutionStatus.Failed, from) { LeaseOwner = owner, Error = error, Attempt = attempt };

    public static ExecutionTransition Cancel(string id, string accountId) =>
        new(id, ExecutionStatus.Cancelled, ExecutionStatuses.NonTerminal) { AccountId = accountId };

    public static ExecutionTransition Expire(string id) =>
        new(id, ExecutionStatus.Expired, ExecutionStatuses.NonTerminal)
        {
            Error = new ExecutionError(ExecutionErrorCodes.DeadlineExceeded, "The execution's deadline passed before it finished.", Retryable: false),
        };
}
