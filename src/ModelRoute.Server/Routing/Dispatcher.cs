using System.Diagnostics;
using Microsoft.Extensions.Options;
using ModelRoute.Server.Executions;
using ModelRoute.Server.Hosting;
using ModelRoute.Server.Providers;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Routing;

/// <summary>
/// Claims due PENDING executions under a lease (or takes fresh ones this node's submissions handed
/// over, already leased: see <see cref="DispatchHandoff"/>), holds each back until its provider has a
/// free slot, calls the provider, and records what came back. A crashed node's leases run out and
/// any node resumes the work.
/// </summary>
public sealed partial class Dispatcher(
    IExecutionStore store,
    ExecutionChanges changes,
    SubmissionLoad submissions,
    DispatchHandoff handoff,
    ProviderRegistry providers,
    ModelCatalog catalog,
    RoutePlanner planner,
    ExecutionOutcomes outcomes,
    ArtifactCopies copies,
    ProviderCallbacks callbacks,
    InFlightExecutions inFlight,
    AccountConcurrencyCaps caps,
    IAccountStore accounts,
    NodeIdentity node,
    IOptions<ModelRouteOptions> options,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILogger<Dispatcher> logger,
    StoreAvailability? availability = null) : BackgroundService
{
    private static readonly TimeSpan SlotBusyDelay = TimeSpan.FromMilliseconds(100);

    // While submissions crowd in, dispatch waits for them up to this long, then claims at most a few, so that
    // work is still started during a long overload, slowly, and the rest once the burst is stored.
    private static readonly TimeSpan SubmissionsFirstWait = TimeSpan.FromMilliseconds(50);
    private const int ClaimWhileBusy = 4;
    private static readonly TimeSpan CircuitWait = TimeSpan.FromMilliseconds(500);
    private readonly DispatchOptions _options = options.Value.Dispatch;

    // Set while the providers' free places, not the dispatcher's, bound the claims: a call that ends then frees a place
    // for the next claim, which fair share needs at once (docs/routing.md); otherwise no wake-up is needed.
    private volatile bool _claimsWaitForProviders;

    // Claimed executions not yet past their provider's slot: the places they will take are not free for the next claim.
    private int _claimedNotStarted;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Hosted services start before the server binds its addresses, and a callback URL is made from
        // that address (unless PublicBaseUrl is set): dispatching earlier, after a restart with work
        // waiting, failed callback executions with "no callback address".
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        using (stoppingToken.Register(() => started.TrySetCanceled(stoppingToken)))
        {
            try
            {
                await started.Task;
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        using var slots = new SemaphoreSlim(_options.MaxInFlight, _options.MaxInFlight);
        var running = new HashSet<Task>();
        void Track(Task task)
        {
            lock (running)
            {
                running.Add(task);
            }

            _ = task.ContinueWith(t => { lock (running) { running.Remove(t); } }, TaskScheduler.Default);
        }

        handoff.Open(slots);
        var handedOver = TakeHandedOverAsync(slots, Track, stoppingToken);
        using var callsEnded = new CancellationTokenSource();
        var renewing = RenewLeasesAsync(callsEnded.Token);
        var readingCaps = ReadCapsAsync(callsEnded.Token);
        var backoff = new FailureBackoff(_options.PollInterval);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await slots.WaitAsync(stoppingToken);
                slots.Release();

                // No more than the providers can start now: claimed work waiting for a provider's place would wait
                // on this node, behind what it claimed before, while other accounts' work waits unclaimed (fair share,
                // docs/routing.md). What is not claimed stays in the store, in its account's queue.
                var wanted = Math.Min(slots.CurrentCount, 64);
                var batch = Math.Min(wanted, providers.FreeSlots - Volatile.Read(ref _claimedNotStarted));
                _claimsWaitForProviders = batch < wanted;
                if (batch <= 0)
                {
                    await changes.WaitForWorkAsync(_options.PollInterval, time, stoppingToken);
                    continue;
                }

                if (submissions.IsBusy)
                {
                    await submissions.WaitForCalmAsync(SubmissionsFirstWait, time, stoppingToken);
                    batch = submissions.IsBusy ? Math.Min(batch, ClaimWhileBusy) : batch;
                }

                var now = time.GetUtcNow();
                var claimed = await store.ClaimDueAsync(node.Id, batch, now, now + _options.LeaseDuration, stoppingToken);
                backoff.Succeeded();
                Interlocked.Add(ref _claimedNotStarted, claimed.Count);
                foreach (var execution in claimed)
                {
                    await slots.WaitAsync(stoppingToken);
                    Track(RunGuardedAsync(execution, slots, stoppingToken));
                }

                if (claimed.Count == 0)
                {
                    await changes.WaitForWorkAsync(changes.UntilNextLook(_options.PollInterval, now), time, stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                // Not a whole poll: work due meanwhile (a retry's backoff ending) would wait for it. A store outage
                // is logged once, by StoreAvailability, not at every try.
                if (availability?.Report(ex) != true)
                {
                    LogLoopFailed(logger, ex);
                }

                await Task.Delay(backoff.Failed(), time, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }

        handoff.Close();
        await handedOver;
        await GiveBackHandedOverAsync();
        Task[] remaining;
        lock (running)
        {
            remaining = [.. running];
        }

        await Task.WhenAll(remaining);
        callsEnded.Cancel();
        await renewing;
        await readingCaps;
    }

    /// <summary>Starts each execution handed over by this node's submissions as soon as a place is free.</summary>
    private async Task TakeHandedOverAsync(SemaphoreSlim slots, Action<Task> track, CancellationToken stoppingToken)
    {
        try
        {
            while (await handoff.Reader.WaitToReadAsync(stoppingToken))
            {
                while (handoff.Reader.TryPeek(out _))
                {
                    await slots.WaitAsync(stoppingToken);
                    if (!handoff.Reader.TryRead(out var execution))
                    {
                        slots.Release();
                        break;
                    }

                    handoff.Taken();
                    track(RunGuardedAsync(execution, slots, stoppingToken, handedOver: true));
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping: what is still queued is given back below.
        }
    }

    /// <summary>On the way out, hands executions still queued back to any node now rather than when their lease runs out.</summary>
    private async Task GiveBackHandedOverAsync()
    {
        while (handoff.Reader.TryRead(out var execution))
        {
            handoff.Taken();
            try
            {
                await store.ReleaseClaimAsync(execution.Id, node.Id, time.GetUtcNow(), CancellationToken.None);
            }
            catch (Exception ex)
            {
                // Its lease runs out and any node claims it then.
                if (availability?.Report(ex) != true)
                {
                    LogRunFailed(logger, execution.Id, ex);
                }
            }
        }
    }

    private async Task RunGuardedAsync(Execution execution, SemaphoreSlim slots, CancellationToken stoppingToken, bool handedOver = false)
    {
        await Task.Yield();
        var starting = new Starting(this, claimed: !handedOver);
        try
        {
            if (handedOver && (_claimsWaitForProviders || caps.IsCapped(execution.AccountId)))
            {
                // Not claimed, so neither the account's cap nor its place was counted: while the providers' places are
                // scarce (or the account is capped) it is claimed like any other, at its place in its account's queue,
                // rather than start ahead of older work of its own account and of other accounts (docs/routing.md).
                await GiveBackUntilAsync(execution.Id, execution.CreatedAt, stoppingToken);
                return;
            }

            await RunAsync(execution, starting, handedOver, stoppingToken);
        }
        catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
        {
            // The lease runs out and the sweeper hands the execution back; nothing is lost.
            if (availability?.Report(ex) != true)
            {
                LogRunFailed(logger, execution.Id, ex);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
        finally
        {
            starting.Done();
            slots.Release();
        }
    }

    /// <summary>A claimed execution's place counted in <see cref="_claimedNotStarted"/> until it has its provider's slot, or none.</summary>
    private sealed class Starting(Dispatcher dispatcher, bool claimed)
    {
        private int _counted = claimed ? 1 : 0;

        public void Done()
        {
            if (Interlocked.Exchange(ref _counted, 0) == 1)
            {
                Interlocked.Decrement(ref dispatcher._claimedNotStarted);
            }
        }
    }

    private async Task RunAsync(Execution execution, Starting starting, bool handedOver, CancellationToken stoppingToken)
    {
        if (execution.PendingResult is not null)
        {
            // The provider has answered: only its outputs are left to copy, and it is never called again (docs/artifacts.md).
            await copies.CopyAsync(execution, stoppingToken);
            return;
        }

        var model = catalog.Find(execution.Model);
        if (model is null)
        {
            var error = new ExecutionError(ExecutionErrorCodes.NoProviderAvailable, $"The model '{execution.Model}' is no longer configured.", false);
            await store.TransitionAsync(ExecutionTransition.Fail(execution.Id, [ExecutionStatus.Pending], error, null, node.Id), stoppingToken);
            return;
        }

        var choice = planner.Next(model, execution.AttemptLog, Random.Shared.NextDouble());
        if (choice.Route is not { } route)
        {
            if (choice.HeldBack)
            {
                // Every route left is behind an open circuit: wait for a trial call rather than fail.
                await GiveBackUntilAsync(execution.Id, time.GetUtcNow() + CircuitWait, stoppingToken);
                return;
            }

            var exhausted = execution.Error ?? new ExecutionError(ExecutionErrorCodes.NoProviderAvailable, "Every route of the model has been tried.", false);
            await store.TransitionAsync(ExecutionTransition.Fail(execution.Id, [ExecutionStatus.Pending], exhausted, null, node.Id), stoppingToken);
            return;
        }

        var provider = providers.Find(route.Provider)!;
        var acquired = provider.TryAcquire();
        starting.Done();
        if (!acquired)
        {
            // The provider is at its concurrency limit: hold the work back rather than overload it. A hand-over goes back
            // to its place in its account's queue (first in, first out), and is claimed when a place frees, as the claims
            // wait for one; work claimed meanwhile by a race with a hand-over waits a moment, not to be claimed at once.
            await GiveBackUntilAsync(execution.Id, handedOver ? execution.CreatedAt : time.GetUtcNow() + SlotBusyDelay, stoppingToken);
            return;
        }

        try
        {
            await CallProviderAsync(execution, model, route, provider, stoppingToken);
        }
        finally
        {
            // No wake-up for the claim loop here unless the providers' places bound its claims: work held back for this
            // provider comes due at its own time (GiveBackUntilAsync), and a claim now would find nothing.
            provider.Release();
            if (_claimsWaitForProviders)
            {
                changes.SignalWork();
            }
        }
    }

    /// <summary>Gives a claimed execution back until <paramref name="notBefore"/>, and looks for it again then.</summary>
    private async Task GiveBackUntilAsync(string executionId, DateTimeOffset notBefore, CancellationToken stoppingToken)
    {
        await store.ReleaseClaimAsync(executionId, node.Id, notBefore, stoppingToken);
        changes.WorkDueAt(notBefore);
    }

    private async Task CallProviderAsync(Execution claimed, ModelDefinition model, RouteDefinition route, ProviderEndpoint provider, CancellationToken stoppingToken)
    {
        var token = ProviderCallbacks.NewToken();
        var startedAt = time.GetUtcNow();
        var start = ExecutionTransition.StartAttempt(claimed.Id, node.Id, startedAt + _options.LeaseDuration, route.Provider, route.ProviderModel, ProviderCallbacks.Hash(token));
        var callbackUrl = callbacks.UrlFor(route.Provider, claimed.Id, token);

        // A provider that answers in its reply is called while the start is still being written: the call and the
        // write overlap, and a quick answer's outcome joins the start's commit. The start is queued first, so it is
        // applied first; if it finds the execution cancelled, expired or taken over, so does the outcome. The call
        // then works from the execution as the start leaves it (it holds the lease, so nothing else changes it).
        var started = start.StartedFrom(claimed, startedAt);
        Task<Execution?>? starting = null;
        Execution? execution;
        if (claimed.ExpiresAt > startedAt && !provider.Adapter.MayCallBack(new ProviderCall(started, model, route, started.Attempts, callbackUrl)))
        {
            starting = store.TransitionAsync(start with { Pipelined = true }, CancellationToken.None); // The call is made: its start must be written.
            execution = started;
        }
        else
        {
            execution = await store.TransitionAsync(start, stoppingToken);
            if (execution is null)
            {
                return; // Cancelled or expired since the claim.
            }
        }

        var remaining = execution.ExpiresAt - startedAt;
        if (remaining <= TimeSpan.Zero)
        {
            await store.TransitionAsync(ExecutionTransition.Expire(execution.Id), CancellationToken.None);
            return;
        }

        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        // Only the provider's own timeout counts as its failure; the execution's deadline is the client's choice.
        var providerTimeoutBinds = provider.Options.Timeout <= remaining;
        using var deadline = new CancellationTokenSource(remaining < provider.Options.Timeout ? remaining : provider.Options.Timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellation.Token, deadline.Token);
        var inFlightCall = inFlight.Register(execution.Id, cancellation, startedAt);
        var call = new ProviderCall(execution, model, route, execution.Attempts, callbackUrl);
        var stopwatch = Stopwatch.StartNew();
        ProviderOutcome outcome;
        try
        {
            outcome = await provider.ExecuteAsync(call, () => providerTimeoutBinds && deadline.IsCancellationRequested && !cancellation.IsCancellationRequested, linked.Token);
        }
        catch (Polly.CircuitBreaker.BrokenCircuitException)
        {
            // The circuit opened while this one waited: give it back without counting the attempt against the route.
            inFlight.Unregister(inFlightCall);
            if (!await StartedAsync(starting))
            {
                return;
            }

            await store.TransitionAsync(
                ExecutionTransition.Retry(execution.Id, [ExecutionStatus.Processing], time.GetUtcNow() + CircuitWait, null, null, node.Id) with { UndoAttempt = true },
                CancellationToken.None);
            return;
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down: hand the execution back now rather than wait for the lease to run out.
            inFlight.Unregister(inFlightCall);
            if (!await StartedAsync(starting))
            {
                return;
            }

            await store.TransitionAsync(ExecutionTransition.Retry(execution.Id, [ExecutionStatus.Processing], time.GetUtcNow(), null, null, node.Id), CancellationToken.None);
            return;
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            await StartedAsync(starting);
            return; // Cancelled or expired: the store already has the final state.
        }
        catch (OperationCanceledException) when ((deadline.IsCancellationRequested && !providerTimeoutBinds) || time.GetUtcNow() >= execution.ExpiresAt)
        {
            // The execution's own deadline cut the call short: it expires, it did not fail.
            var cut = new AttemptRecord(execution.Attempts, route.Provider, route.ProviderModel, "expired", startedAt, stopwatch.ElapsedMilliseconds);
            await Task.WhenAll(
                store.TransitionAsync(ExecutionTransition.Expire(execution.Id) with { Attempt = cut, Pipelined = starting is not null }, CancellationToken.None),
                starting ?? Task.FromResult<Execution?>(null));
            return;
        }
        catch (OperationCanceledException)
        {
            outcome = new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.ProviderTimeout, "The provider did not answer in time.", true, route.Provider));
        }
        catch (HttpRequestException ex)
        {
            outcome = new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.ProviderUnavailable, $"Could not reach the provider ({ex.HttpRequestError}).", true, route.Provider));
        }
        finally
        {
            inFlight.Unregister(inFlightCall);
        }

        var error = (outcome as ProviderOutcome.Failed)?.Error;
        var attempt = new AttemptRecord(execution.Attempts, route.Provider, route.ProviderModel, ExecutionOutcomes.OutcomeName(outcome), startedAt, stopwatch.ElapsedMilliseconds, error);
        // Queued behind the start when it was not waited for: both commit together, or the start first.
        await Task.WhenAll(
            outcomes.ApplyAsync(execution, outcome, [ExecutionStatus.Processing], attempt, node.Id, CancellationToken.None, pipelined: starting is not null),
            starting ?? Task.FromResult<Execution?>(null));
    }

    /// <summary>Whether the attempt's start, when it was not waited for, was applied (false: the execution had moved on).</summary>
    private static async Task<bool> StartedAsync(Task<Execution?>? starting) => starting is null || await starting is not null;

    /// <summary>
    /// Keeps the leases of this node's running calls: a look every sixth of the lease renews each call whose lease was
    /// written a third of it ago or more, so a lease is renewed between a third and a half of its length after it was
    /// written. One loop for every call: most calls end long before their first renewal, and a timer of their own
    /// (a delay per call) cost about 4 % of the request threads with a zero-latency provider.
    /// </summary>
    private async Task RenewLeasesAsync(CancellationToken callsEnded)
    {
        while (!callsEnded.IsCancellationRequested)
        {
            await Task.Delay(_options.LeaseDuration / 6, time, callsEnded).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            var now = time.GetUtcNow();
            var due = inFlight.DueForRenewal(now - _options.LeaseDuration / 3);
            if (due.Count > 0)
            {
                await Task.WhenAll(due.Select(call => RenewLeaseAsync(call, now)));
            }
        }
    }

    /// <summary>Reads the accounts' caps every <see cref="AccountConcurrencyCaps.RefreshInterval"/> (see there).</summary>
    private async Task ReadCapsAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                caps.Replace(await accounts.ListConcurrencyCapsAsync(stopping));
            }
            catch (Exception ex) when (!stopping.IsCancellationRequested)
            {
                // A store outage is logged once, by StoreAvailability, not every second here.
                if (availability?.Report(ex) != true)
                {
                    LogCapsFailed(logger, ex);
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }

            await Task.Delay(AccountConcurrencyCaps.RefreshInterval, time, stopping).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private async Task RenewLeaseAsync(InFlightCall call, DateTimeOffset now)
    {
        try
        {
            if (await store.RenewLeaseAsync(call.ExecutionId, node.Id, now + _options.LeaseDuration, CancellationToken.None))
            {
                call.LeaseWrittenAt = now;
            }
            else
            {
                // The execution ended elsewhere (a cancel or expiry on another node) or another node took it
                // over: this call's result would be dropped, so stop it and free the provider's slot.
                inFlight.Stop(call);
            }
        }
        catch (Exception ex)
        {
            // Tried again at the next look; the lease lasts three times as long as the wait for it.
            if (availability?.Report(ex) != true)
            {
                LogRenewalFailed(logger, call.ExecutionId, ex);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "The dispatch loop failed; retrying")]
    private static partial void LogLoopFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Renewing the lease of {ExecutionId} failed; trying again at the next look")]
    private static partial void LogRenewalFailed(ILogger logger, string executionId, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reading the accounts' concurrency caps failed; trying again in a second")]
    private static partial void LogCapsFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Dispatching {ExecutionId} failed; its lease will run out and it will be retried")]
    private static partial void LogRunFailed(ILogger logger, string executionId, Exception exception);
}
