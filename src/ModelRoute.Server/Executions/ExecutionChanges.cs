using System.Collections.Concurrent;

namespace ModelRoute.Server.Executions;

/// <summary>
/// In-process news of committed changes: wakes long-polls and event streams waiting on an
/// execution, and wakes the dispatcher when work becomes due. ExecutionCommits publishes after each commit.
/// With PostgreSQL, other nodes' changes arrive through <see cref="Remote"/>; waiters also
/// re-read on a timeout, so a change is seen even if a notification is lost.
/// </summary>
/// <param name="health">Counts endings for the node's throughput (docs/api.md#provider-health); none in unit tests.</param>
public sealed class ExecutionChanges(Operations.GatewayMetrics metrics, Operations.ProviderHealth? health = null)
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _waiters = new(StringComparer.Ordinal);

    // Account feeds waiting on an account's next change (docs/api.md#the-account-event-feed). Counted, so that a commit
    // looks for one only while some feed is open on this node: the common case costs one volatile read.
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _accountWaiters = new(StringComparer.Ordinal);
    private int _accountFeeds;
    private readonly SemaphoreSlim _workAvailable = new(0, 1);
    private readonly SemaphoreSlim _webhooksAvailable = new(0, 1);

    // UTC ticks of work known to come due later with no one to signal it then (a retry after its backoff, work held
    // back for a moment), each kept until a look that found nothing passes it. Every time is kept, not only the
    // earliest: with only the earliest, a retry's due time was dropped while an earlier one, already claimed by a look
    // that found work, was still held, and the retry waited for a whole poll. Bounded: past MaxDueTimes the earliest
    // goes (under such load the dispatcher keeps looking anyway, and the poll is the floor).
    private const int MaxDueTimes = 4096;
    private readonly SortedSet<long> _dueTimes = [];

    /// <summary>
    /// A change committed by this node. A PENDING execution wakes the dispatcher, unless <paramref name="dispatchToClaim"/>
    /// is false because it was handed to this node's dispatcher already (see DispatchHandoff). <paramref name="webhooksToClaim"/>
    /// wakes the webhook worker, and is false when the change wrote no deliveries or handed all it wrote to this
    /// node's worker already (see WebhookHandoff): a claim then finds nothing, and costs a round trip.
    /// </summary>
    public void Published(Execution execution, bool webhooksToClaim = false, bool dispatchToClaim = true)
    {
        metrics.Entered(execution);
        health?.Entered(execution.Status);
        if (execution.Status == ExecutionStatus.Pending && dispatchToClaim)
        {
            WorkDueAt(execution.NextAttemptAt);
        }

        Wake(execution.Id, execution.Status, dispatchToClaim);
        if (Volatile.Read(ref _accountFeeds) > 0 && _accountWaiters.TryRemove(execution.AccountId, out var feeds))
        {
            feeds.TrySetResult();
        }

        if (webhooksToClaim)
        {
            SignalWebhooks();
        }
    }

    /// <summary>
    /// A change committed by another node, heard through the store's notifications. Not counted in
    /// the metrics, which the committing node has already done. Deliveries to claim are told apart
    /// (<see cref="SignalWebhooks"/>).
    /// </summary>
    public void Remote(string executionId, ExecutionStatus status) => Wake(executionId, status, dispatchToClaim: true);

    private void Wake(string executionId, ExecutionStatus status, bool dispatchToClaim)
    {
        if (_waiters.TryRemove(executionId, out var waiter))
        {
            waiter.TrySetResult();
        }

        if (status == ExecutionStatus.Pending && dispatchToClaim)
        {
            SignalWork();
        }
    }

    /// <summary>New deliveries may be in the outbox.</summary>
    public void SignalWebhooks() => Signal(_webhooksAvailable);

    public Task WaitForWebhooksAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken) =>
        WaitAsync(_webhooksAvailable, timeout, time, cancellationToken);

    public void SignalWork() => Signal(_workAvailable);

    private static void Signal(SemaphoreSlim signal)
    {
        try
        {
            if (signal.CurrentCount == 0)
            {
                signal.Release();
            }
        }
        catch (SemaphoreFullException)
        {
            // Already signalled: one wake-up is enough.
        }
    }

    /// <summary>
    /// Work that comes due at <paramref name="due"/> with no one to signal it then (a retry after its backoff, work held
    /// back for a moment): an idle dispatcher looks again at that time, not a whole poll interval later. A time earlier
    /// than any known also wakes the dispatcher: it may already be waiting, for a whole poll, on a look that came before
    /// this news (work given back while the claim loop went round), and it then sets its wait again from this time.
    /// </summary>
    public void WorkDueAt(DateTimeOffset due)
    {
        var ticks = due.UtcTicks;
        bool earliest;
        lock (_dueTimes)
        {
            if (!_dueTimes.Add(ticks))
            {
                return; // Known already.
            }

            if (_dueTimes.Count > MaxDueTimes)
            {
                _dueTimes.Remove(_dueTimes.Min); // Most likely a time already looked past by a look that found work.
            }

            earliest = _dueTimes.Min == ticks;
        }

        if (earliest)
        {
            SignalWork();
        }
    }

    /// <summary>
    /// How long an idle dispatcher whose look for due work at <paramref name="lookedAt"/> found nothing waits before the
    /// next: <paramref name="poll"/>, or less when known work comes due sooner. Work due by then was seen by that look,
    /// so its times are used up.
    /// </summary>
    public TimeSpan UntilNextLook(TimeSpan poll, DateTimeOffset lookedAt)
    {
        long due;
        lock (_dueTimes)
        {
            while (_dueTimes.Count > 0 && _dueTimes.Min <= lookedAt.UtcTicks)
            {
                _dueTimes.Remove(_dueTimes.Min);
            }

            if (_dueTimes.Count == 0)
            {
                return poll;
            }

            due = _dueTimes.Min;
        }

        var wait = TimeSpan.FromTicks(due - lookedAt.UtcTicks);
        return wait < poll ? wait : poll;
    }

    /// <summary>Completes when new work may be due, or after <paramref name="timeout"/>.</summary>
    public Task WaitForWorkAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken) =>
        WaitAsync(_workAvailable, timeout, time, cancellationToken);

    private static async Task WaitAsync(SemaphoreSlim signal, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        using var timer = new CancellationTokenSource(timeout, time);
        using var both = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
        try
        {
            // The wait must be cancelled, not abandoned: an abandoned waiter would swallow a later signal.
            await signal.WaitAsync(both.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // Look for due work anyway: retries come due without anyone signalling.
        }
    }

    /// <summary>
    /// A task that completes at the execution's next committed change on this node. Take it
    /// before reading the execution, so a change between the read and the wait is not missed.
    /// </summary>
    public Task WhenChanged(string executionId) =>
        _waiters.GetOrAdd(executionId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    /// <summary>
    /// An account feed opens on this node: until <see cref="AccountFeedClosed"/>, this node's commits complete the
    /// account's <see cref="WhenAccountChanged"/>. Other nodes' changes are not told by account: feeds re-read on a timeout.
    /// </summary>
    public void AccountFeedOpened() => Interlocked.Increment(ref _accountFeeds);

    public void AccountFeedClosed() => Interlocked.Decrement(ref _accountFeeds);

    /// <summary>A task that completes at this node's next committed change of any of the account's executions; take it before reading.</summary>
    public Task WhenAccountChanged(string accountId) =>
        _accountWaiters.GetOrAdd(accountId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
}
