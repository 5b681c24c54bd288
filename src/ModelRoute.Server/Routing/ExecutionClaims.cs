using ModelRoute.Server.Providers;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Routing;

/// <summary>
/// The dispatcher's claims: no more than the providers can start now, fewer while submissions crowd in, and the
/// places claimed work holds until it has its provider's slot (<see cref="ClaimedPlace"/>).
/// </summary>
public sealed class ExecutionClaims(
    IExecutionStore store,
    ExecutionChanges changes,
    SubmissionLoad submissions,
    ProviderRegistry providers,
    DispatchHandoff handoff,
    NodeIdentity node,
    IOptions<ModelRouteOptions> options,
    TimeProvider time)
{
    // While submissions crowd in, dispatch waits for them up to this long, then claims at most a few, so that
    // work is still started during a long overload, slowly, and the rest once the burst is stored.
    private static readonly TimeSpan SubmissionsFirstWait = TimeSpan.FromMilliseconds(50);
    private const int ClaimWhileBusy = 4;
    private readonly DispatchOptions _options = options.Value.Dispatch;

    private volatile bool _waitForProviders;

    // Claimed executions not yet past their provider's slot: the places they will take are not free for the next claim.
    private int _claimedNotStarted;

    /// <summary>
    /// Set while the providers' free places, not the dispatcher's, bound the claims: a call that ends then frees a place
    /// for the next claim, which fair share needs at once (docs/routing.md); otherwise no wake-up is needed.
    /// </summary>
    public bool WaitForProviders => _waitForProviders;

    /// <summary>Claims up to <paramref name="wanted"/> due executions; when there are none, waits until some may be due.</summary>
    public async Task<IReadOnlyList<Execution>> ClaimAsync(int wanted, CancellationToken stoppingToken)
    {
        // No more than the providers can start now: claimed work waiting for a provider's place would wait
        // on this node, behind what it claimed before, while other accounts' work waits unclaimed (fair share,
        // docs/routing.md). What is not claimed stays in the store, in its account's queue.
        var batch = Math.Min(wanted, providers.FreeSlots - Volatile.Read(ref _claimedNotStarted));
        _waitForProviders = batch < wanted;
        handoff.ProvidersFull(batch < wanted);
        if (batch <= 0)
        {
            await changes.WaitForWorkAsync(_options.PollInterval, time, stoppingToken);
            return [];
        }

        if (submissions.IsBusy)
        {
            await submissions.WaitForCalmAsync(SubmissionsFirstWait, time, stoppingToken);
            batch = submissions.IsBusy ? Math.Min(batch, ClaimWhileBusy) : batch;
        }

        var now = time.GetUtcNow();
        var claimed = await store.ClaimDueAsync(node.Id, batch, now, now + _options.LeaseDuration, stoppingToken);
        Interlocked.Add(ref _claimedNotStarted, claimed.Count);
        if (claimed.Count == 0)
        {
            await changes.WaitForWorkAsync(changes.UntilNextLook(_options.PollInterval, now), time, stoppingToken);
        }

        return claimed;
    }

    /// <summary>The place of an execution about to start: counted while it was <paramref name="claimed"/>, until <see cref="ClaimedPlace.Done"/>.</summary>
    public ClaimedPlace PlaceOf(bool claimed) => new(this, claimed);

    /// <summary>A claimed execution's place, counted until it has its provider's slot, or none.</summary>
    public sealed class ClaimedPlace
    {
        private readonly ExecutionClaims _claims;
        private int _counted;

        internal ClaimedPlace(ExecutionClaims claims, bool claimed)
        {
            _claims = claims;
            _counted = claimed ? 1 : 0;
        }

        public void Done()
        {
            if (Interlocked.Exchange(ref _counted, 0) == 1)
            {
                Interlocked.Decrement(ref _claims._claimedNotStarted);
            }
        }
    }
}
