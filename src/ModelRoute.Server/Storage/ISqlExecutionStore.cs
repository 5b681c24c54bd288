namespace ModelRoute.Server.Storage;

/// <summary>
/// An engine's executions in SQL (<see cref="Sqlite.SqliteExecutionStore"/>, <see cref="Postgres.PostgresExecutionStore"/>):
/// the reads and claims, and the two writes, which take this node's leases as plain values and answer what they wrote.
/// Nothing runs after the commit here: <see cref="ExecutionCommits"/> hands over, tells and wakes (docs/architecture.md).
/// </summary>
public interface ISqlExecutionStore : IExecutionQueries
{
    /// <summary>
    /// Inserts the execution and places its hold in one transaction, or answers why not (as
    /// <see cref="IExecutionStore.SubmitAsync"/>). With <paramref name="lease"/> the row is stored leased, and next due
    /// when the lease ends; without, it is due at once for any node's claim.
    /// </summary>
    Task<SubmitOutcome> SubmitAsync(NewExecution execution, LeaseTerms? lease, CancellationToken cancellationToken);

    /// <summary>
    /// Applies the move if the execution is still where the transition expects it, with its settlement, event and
    /// outbox rows. With <paramref name="deliveryLease"/> the deliveries due at once are written leased to its owner.
    /// </summary>
    Task<StoredTransition> TransitionAsync(ExecutionTransition transition, DeliveryLeaseTerms? deliveryLease, CancellationToken cancellationToken);
}

/// <summary>A lease to write with a row: the node id as its owner, and its end in Unix milliseconds.</summary>
public readonly record struct LeaseTerms(string Owner, long ExpiresAt);

/// <summary>The lease of deliveries written due at once: their owner, for <paramref name="Length"/> from the write's time.</summary>
public readonly record struct DeliveryLeaseTerms(string Owner, TimeSpan Length);

/// <summary>What a transition wrote: the moved execution (none when the move did not apply) and its outbox rows.</summary>
public readonly struct StoredTransition
{
    private readonly Execution? _execution;
    private readonly ExecutionRow? _row;
    private readonly EnqueuedWebhooks? _webhooks;

    internal StoredTransition(Execution? execution, EnqueuedWebhooks webhooks)
    {
        _execution = execution;
        _webhooks = webhooks;
    }

    /// <summary>A moved row that wrote no deliveries, made an execution (its JSON parsed) only when asked, off the writer's thread.</summary>
    internal StoredTransition(ExecutionRow row)
    {
        _row = row;
    }

    /// <summary>The deliveries written: those leased to the given owner, and how many in all.</summary>
    public EnqueuedWebhooks Webhooks => _webhooks ?? EnqueuedWebhooks.None;

    /// <summary>The moved execution, or null. Parses the row at each call: ask once.</summary>
    public Execution? ToExecution() => _execution ?? _row?.ToExecution();
}
