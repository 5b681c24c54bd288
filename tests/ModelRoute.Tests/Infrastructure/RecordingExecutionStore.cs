namespace ModelRoute.Tests.Infrastructure;

/// <summary>
/// Wraps the gateway's own execution store to see what the dispatcher claims and writes. <see cref="Install"/> puts it
/// in place of the store; <see cref="Of"/> finds it again.
/// </summary>
public sealed class RecordingExecutionStore(IExecutionStore inner) : IExecutionStore
{
    private int _claimCalls;

    public ConcurrentQueue<string> Claimed { get; } = new();

    /// <summary>How many times the dispatcher looked for due work, whether or not it found any.</summary>
    public int ClaimCalls => Volatile.Read(ref _claimCalls);

    /// <summary>Looks for due work to make throw, as a dropped database connection would.</summary>
    public SimulatedFailures Claims { get; } = new();

    /// <summary>Every lease renewal, in the order answered: the execution, and whether the lease was still held.</summary>
    public ConcurrentQueue<(string Id, bool Renewed)> Renewals { get; } = new();

    /// <summary>Every transition asked for, in the order asked.</summary>
    public ConcurrentQueue<ExecutionTransition> Transitions { get; } = new();

    /// <summary>
    /// Called with each transition as it is asked for, before the store has it; the transition's task completes only
    /// when the returned task does too (and the store's write has).
    /// </summary>
    public Func<ExecutionTransition, Task>? BeforeAnswering { get; set; }

    public static void Install(IServiceCollection services) => Install(services, _ => { });

    /// <summary>Installs it set up by <paramref name="configure"/> before the gateway's first use of it.</summary>
    public static void Install(IServiceCollection services, Action<RecordingExecutionStore> configure)
    {
        var original = services.Last(d => d.ServiceType == typeof(IExecutionStore));
        services.Remove(original);
        services.AddSingleton<IExecutionStore>(sp =>
        {
            var store = new RecordingExecutionStore((IExecutionStore)original.ImplementationFactory!(sp));
            configure(store);
            return store;
        });
    }

    public static RecordingExecutionStore Of(GatewayFactory gateway) => (RecordingExecutionStore)gateway.Services.GetRequiredService<IExecutionStore>();

    public async Task<IReadOnlyList<Execution>> ClaimDueAsync(string owner, int max, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _claimCalls);
        Claims.ThrowIfDue();
        var claimed = await inner.ClaimDueAsync(owner, max, now, leaseUntil, cancellationToken);
        foreach (var execution in claimed)
        {
            Claimed.Enqueue(execution.Id);
        }

        return claimed;
    }

    public async Task<Execution?> TransitionAsync(ExecutionTransition transition, CancellationToken cancellationToken)
    {
        Transitions.Enqueue(transition);
        var written = inner.TransitionAsync(transition, cancellationToken);
        if (BeforeAnswering is { } before)
        {
            await before(transition);
        }

        return await written;
    }

    public Task<SubmitOutcome> SubmitAsync(NewExecution execution, CancellationToken cancellationToken) => inner.SubmitAsync(execution, cancellationToken);

    public Task<Execution?> GetAsync(string id, string? accountId, CancellationToken cancellationToken) => inner.GetAsync(id, accountId, cancellationToken);

    public Task<Execution?> FindByIdempotencyKeyAsync(string accountId, string idempotencyKey, CancellationToken cancellationToken) =>
        inner.FindByIdempotencyKeyAsync(accountId, idempotencyKey, cancellationToken);

    public Task<IReadOnlyList<Execution>> ListAsync(string accountId, ExecutionQuery query, CancellationToken cancellationToken) => inner.ListAsync(accountId, query, cancellationToken);

    /// <summary>Called with the execution of each claim given back, before the store has it; the give-back waits for its task.</summary>
    public Func<string, Task>? BeforeReleasing { get; set; }

    public async Task ReleaseClaimAsync(string id, string owner, DateTimeOffset notBefore, CancellationToken cancellationToken)
    {
        if (BeforeReleasing is { } before)
        {
            await before(id);
        }

        await inner.ReleaseClaimAsync(id, owner, notBefore, cancellationToken);
    }

    /// <summary>
    /// Asked before each lease renewal: true answers it as lost (another node took the work over) without renewing,
    /// so the lease runs out as it would then.
    /// </summary>
    public Func<string, bool>? LoseLease { get; set; }

    public async Task<bool> RenewLeaseAsync(string id, string owner, DateTimeOffset leaseUntil, CancellationToken cancellationToken)
    {
        var renewed = LoseLease?.Invoke(id) != true && await inner.RenewLeaseAsync(id, owner, leaseUntil, cancellationToken);
        Renewals.Enqueue((id, renewed));
        return renewed;
    }

    public Task<IReadOnlyList<Execution>> ClaimDuePollsAsync(int max, DateTimeOffset now, DateTimeOffset nextPollAt, CancellationToken cancellationToken) =>
        inner.ClaimDuePollsAsync(max, now, nextPollAt, cancellationToken);

    /// <summary>Sweeps to make fail at their first step (the store unreachable).</summary>
    public SimulatedFailures Sweeps { get; } = new();

    public Task<IReadOnlyList<string>> ListExpiredAsync(DateTimeOffset now, int max, CancellationToken cancellationToken)
    {
        Sweeps.ThrowIfDue();
        return inner.ListExpiredAsync(now, max, cancellationToken);
    }

    public Task<IReadOnlyList<Execution>> ListAbandonedAsync(DateTimeOffset now, int max, CancellationToken cancellationToken) => inner.ListAbandonedAsync(now, max, cancellationToken);

    public Task<IReadOnlyList<PurgedExecution>> PurgeAsync(DateTimeOffset endedBefore, int max, CancellationToken cancellationToken) => inner.PurgeAsync(endedBefore, max, cancellationToken);

    public Task<IReadOnlyList<ExecutionEvent>> ListEventsAsync(string executionId, long afterSequence, CancellationToken cancellationToken) =>
        inner.ListEventsAsync(executionId, afterSequence, cancellationToken);

    public Task<IReadOnlyList<ExecutionEvent>> ListAccountEventsAsync(string accountId, long afterSequence, int limit, CancellationToken cancellationToken) =>
        inner.ListAccountEventsAsync(accountId, afterSequence, limit, cancellationToken);

    public Task<long> LastAccountEventAsync(string accountId, CancellationToken cancellationToken) => inner.LastAccountEventAsync(accountId, cancellationToken);
}
