using ModelRoute.Server.Routing;
using ModelRoute.Server.Storage;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Server.Executions;

/// <summary>
/// The execution store as the gateway uses it (docs/architecture.md, "Storage and the after-commit steps"): the
/// engine's <see cref="ISqlExecutionStore"/> writes each submission and state move, and what must follow the commit
/// happens here, once for both engines. Before the write it reserves what this node takes on: a place in its
/// dispatcher for a fresh submission (<see cref="DispatchHandoff"/>), a lease on deliveries due now for its webhook
/// worker while it has room (<see cref="WebhookHandoff"/>). After the commit it hands those over, tells the other
/// nodes (<see cref="IChangeBroadcast"/>) and wakes this node's waiters and workers (<see cref="ExecutionChanges"/>).
/// Reads and claims go straight to the store.
/// </summary>
public sealed class ExecutionCommits(
    ISqlExecutionStore store,
    ExecutionChanges changes,
    IOptions<ModelRouteOptions> options,
    TimeProvider time,
    IChangeBroadcast? broadcast = null,
    NodeIdentity? node = null,
    DispatchHandoff? dispatch = null,
    WebhookHandoff? webhooks = null) : IExecutionStore
{
    private readonly IChangeBroadcast _broadcast = broadcast ?? NoChangeBroadcast.Instance;

    public async Task<SubmitOutcome> SubmitAsync(NewExecution execution, CancellationToken cancellationToken)
    {
        // A reserved place is given back on a replay, a refusal or a failure (the lease's Dispose).
        using var lease = SubmissionLease.Reserve(node, dispatch, time, options.Value.Dispatch.LeaseDuration);
        var outcome = await store.SubmitAsync(execution, lease.Terms, cancellationToken);
        if (outcome.Result == SubmitResult.Created)
        {
            var created = outcome.Execution!;

            // Handed to this node's dispatcher: no other node could claim it, so none is told.
            var handedOver = lease.HandOver(created);
            if (!handedOver)
            {
                _broadcast.ExecutionChanged(created.Id, ExecutionStatus.Pending);
            }

            changes.Published(created, dispatchToClaim: !handedOver);
        }

        return outcome;
    }

    public async Task<Execution?> TransitionAsync(ExecutionTransition transition, CancellationToken cancellationToken)
    {
        var stored = await store.TransitionAsync(transition, DeliveryLease(), cancellationToken);
        if (stored.ToExecution() is not { } execution)
        {
            return null;
        }

        var written = stored.Webhooks;
        _broadcast.ExecutionChanged(execution.Id, transition.To);
        if (written.NeedClaim)
        {
            _broadcast.WebhooksWritten(); // Any node's worker may take them.
        }

        // Those leased to this node go to its worker now, without a claim; if the node dies first, the lease runs out.
        webhooks?.Offer(written.Leased);
        changes.Published(execution, written.NeedClaim);
        return execution;
    }

    /// <summary>Deliveries due now go leased to this node's worker while it has room; the lease outlives the send timeout, as a claim's does.</summary>
    private DeliveryLeaseTerms? DeliveryLease() =>
        node is not null && webhooks is { HasRoom: true }
            ? new DeliveryLeaseTerms(node.Id, options.Value.Webhooks.Timeout + options.Value.Dispatch.LeaseDuration)
            : null;

    public Task<Execution?> GetAsync(string id, string? accountId, CancellationToken cancellationToken) =>
        store.GetAsync(id, accountId, cancellationToken);

    public Task<Execution?> FindByIdempotencyKeyAsync(string accountId, string idempotencyKey, CancellationToken cancellationToken) =>
        store.FindByIdempotencyKeyAsync(accountId, idempotencyKey, cancellationToken);

    public Task<IReadOnlyList<Execution>> ListAsync(string accountId, ExecutionQuery query, CancellationToken cancellationToken) =>
        store.ListAsync(accountId, query, cancellationToken);

    public Task<IReadOnlyList<Execution>> ClaimDueAsync(string owner, int max, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken) =>
        store.ClaimDueAsync(owner, max, now, leaseUntil, cancellationToken);

    public Task ReleaseClaimAsync(string id, string owner, DateTimeOffset notBefore, CancellationToken cancellationToken) =>
        store.ReleaseClaimAsync(id, owner, notBefore, cancellationToken);

    public Task<bool> RenewLeaseAsync(string id, string owner, DateTimeOffset leaseUntil, CancellationToken cancellationToken) =>
        store.RenewLeaseAsync(id, owner, leaseUntil, cancellationToken);

    public Task<IReadOnlyList<Execution>> ClaimDuePollsAsync(int max, DateTimeOffset now, DateTimeOffset nextPollAt, CancellationToken cancellationToken) =>
        store.ClaimDuePollsAsync(max, now, nextPollAt, cancellationToken);

    public Task<IReadOnlyList<string>> ListExpiredAsync(DateTimeOffset now, int max, CancellationToken cancellationToken) =>
        store.ListExpiredAsync(now, max, cancellationToken);

    public Task<IReadOnlyList<Execution>> ListAbandonedAsync(DateTimeOffset now, int max, CancellationToken cancellationToken) =>
        store.ListAbandonedAsync(now, max, cancellationToken);

    public Task<IReadOnlyList<PurgedExecution>> PurgeAsync(DateTimeOffset endedBefore, int max, CancellationToken cancellationToken) =>
        store.PurgeAsync(endedBefore, max, cancellationToken);

    public Task<IReadOnlyList<ExecutionEvent>> ListEventsAsync(string executionId, long afterSequence, CancellationToken cancellationToken) =>
        store.ListEventsAsync(executionId, afterSequence, cancellationToken);

    public Task<IReadOnlyList<ExecutionEvent>> ListAccountEventsAsync(string accountId, long afterSequence, int limit, CancellationToken cancellationToken) =>
        store.ListAccountEventsAsync(accountId, afterSequence, limit, cancellationToken);

    public Task<long> LastAccountEventAsync(string accountId, CancellationToken cancellationToken) =>
        store.LastAccountEventAsync(accountId, cancellationToken);
}
