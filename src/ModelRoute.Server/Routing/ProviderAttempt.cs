using System.Diagnostics;
using ModelRoute.Server.Operations;
using ModelRoute.Server.Providers;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Routing;

/// <summary>
/// One provider call for a claimed execution, from its attempt's start to what the call came to: an outcome (applied
/// by <see cref="ExecutionOutcomes"/>), or a call cut short (an open circuit, the node stopping, a cancel, the
/// execution's deadline), each written as its own transition. Which exception means which is decided in one place,
/// <see cref="Classify"/>.
/// </summary>
public sealed class ProviderAttempt(
    IExecutionStore store,
    ExecutionOutcomes outcomes,
    ProviderCallbacks callbacks,
    InFlightExecutions inFlight,
    NodeIdentity node,
    GatewayMetrics metrics,
    IOptions<ModelRouteOptions> options,
    TimeProvider time,
    ProviderHealth? health = null)
{
    /// <summary>How long work behind an open circuit waits before it looks for a route again.</summary>
    public static readonly TimeSpan CircuitWait = TimeSpan.FromMilliseconds(500);

    private readonly DispatchOptions _options = options.Value.Dispatch;

    /// <summary>How a call that threw ended.</summary>
    private enum Cut
    {
        /// <summary>The provider failed (timed out, or could not be reached): an outcome like any other.</summary>
        Failed,

        /// <summary>The circuit opened while the call waited: given back without counting the attempt.</summary>
        CircuitOpen,

        /// <summary>This node is stopping: handed back now rather than when the lease runs out.</summary>
        Stopping,

        /// <summary>Cancelled or expired elsewhere: the store has the final state already.</summary>
        Cancelled,

        /// <summary>The execution's own deadline cut the call short: it expires, it did not fail.</summary>
        Expired,
    }

    /// <summary>Starts an attempt of <paramref name="claimed"/> on <paramref name="route"/>, calls the provider, and writes what came of it.</summary>
    /// <remarks>
    /// A provider that answers in its reply is called while the start is still being written: the call and the
    /// write overlap, and a quick answer's outcome joins the start's commit. The start is queued first, so it is
    /// applied first; if it finds the execution cancelled, expired or taken over, so does the outcome. The call
    /// then works from the execution as the start leaves it (it holds the lease, so nothing else changes it).
    /// </remarks>
    public async Task RunAsync(Execution claimed, ModelDefinition model, RouteDefinition route, ProviderEndpoint provider, CancellationToken stoppingToken)
    {
        var token = ProviderCallbacks.NewToken();
        var startedAt = time.GetUtcNow();
        var start = ExecutionTransition.StartAttempt(claimed.Id, node.Id, startedAt + _options.LeaseDuration, route.Provider, route.ProviderModel, ProviderCallbacks.Hash(token));
        var callbackUrl = callbacks.UrlFor(route.Provider, claimed.Id, token);

        var started = start.StartedFrom(claimed, startedAt);
        Task<Execution?>? starting = null;
        Execution? execution = started;
        if (claimed.ExpiresAt > startedAt && !provider.Adapter.MayCallBack(new ProviderCall(started, model, route, started.Attempts, callbackUrl)))
        {
            starting = store.TransitionAsync(start with { Pipelined = true }, CancellationToken.None); // The call is made: its start must be written.
        }
        else if ((execution = await store.TransitionAsync(start, stoppingToken)) is null)
        {
            return; // Cancelled or expired since the claim.
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
        var span = AttemptTelemetry.Started(metrics, claimed, route, execution.Attempts, startedAt);
        var stopwatch = Stopwatch.StartNew();
        ProviderOutcome outcome;
        try
        {
            var call = new ProviderCall(execution, model, route, execution.Attempts, callbackUrl);
            outcome = await provider.ExecuteAsync(call, () => providerTimeoutBinds && deadline.IsCancellationRequested && !cancellation.IsCancellationRequested, linked.Token);
        }
        catch (Exception ex) when (ex is Polly.CircuitBreaker.BrokenCircuitException or OperationCanceledException or HttpRequestException)
        {
            var cut = Classify(ex, stoppingToken, cancellation, deadline.IsCancellationRequested && !providerTimeoutBinds, execution.ExpiresAt);
            if (cut is not Cut.Failed)
            {
                EndCutSpan(cut, span, route.Provider, execution.Model, stopwatch.Elapsed);
                await EndCutAsync(cut, inFlightCall, execution, route, startedAt, stopwatch.ElapsedMilliseconds, starting);
                return;
            }

            outcome = Failure(ex, route.Provider);
        }
        finally
        {
            inFlight.Unregister(inFlightCall);
        }

        AttemptTelemetry.Ended(metrics, health, span, route.Provider, execution.Model, AttemptTelemetry.OutcomeLabel(outcome), stopwatch.Elapsed);
        await ApplyAsync(execution, route, outcome, startedAt, stopwatch.ElapsedMilliseconds, starting);
    }

    /// <summary>Applies the call's outcome, queued behind the start when it was not waited for: both commit together, or the start first.</summary>
    private Task ApplyAsync(Execution execution, RouteDefinition route, ProviderOutcome outcome, DateTimeOffset startedAt, long elapsedMs, Task<Execution?>? starting)
    {
        var error = (outcome as ProviderOutcome.Failed)?.Error;
        var attempt = new AttemptRecord(execution.Attempts, route.Provider, route.ProviderModel, ExecutionOutcomes.OutcomeName(outcome), startedAt, elapsedMs, error);
        return Task.WhenAll(
            outcomes.ApplyAsync(execution, outcome, [ExecutionStatus.Processing], attempt, node.Id, CancellationToken.None, pipelined: starting is not null),
            starting ?? Task.FromResult<Execution?>(null));
    }

    /// <summary>What a call that threw <paramref name="ex"/> came to; checked in this order.</summary>
    private Cut Classify(Exception ex, CancellationToken stoppingToken, CancellationTokenSource cancellation, bool executionDeadlineCut, DateTimeOffset expiresAt) => ex switch
    {
        Polly.CircuitBreaker.BrokenCircuitException => Cut.CircuitOpen,
        OperationCanceledException when stoppingToken.IsCancellationRequested => Cut.Stopping,
        OperationCanceledException when cancellation.IsCancellationRequested => Cut.Cancelled,
        OperationCanceledException when executionDeadlineCut || time.GetUtcNow() >= expiresAt => Cut.Expired,
        _ => Cut.Failed,
    };

    /// <summary>
    /// Ends the span and the call's latency of a call cut short: an open circuit made no call (the attempt is undone),
    /// the rest count as cancelled, or as the deadline passed.
    /// </summary>
    private void EndCutSpan(Cut cut, Activity? span, string provider, string model, TimeSpan elapsed)
    {
        if (cut is Cut.CircuitOpen)
        {
            TraceContext.Failed(span, "circuit_open");
            span?.Dispose();
            return;
        }

        AttemptTelemetry.Ended(metrics, health, span, provider, model, cut is Cut.Expired ? "deadline_exceeded" : "cancelled", elapsed);
    }

    /// <summary>The provider's failure: it did not answer within its timeout, or could not be reached.</summary>
    private static ProviderOutcome.Failed Failure(Exception ex, string provider) => new(ex is HttpRequestException http
        ? new ExecutionError(ExecutionErrorCodes.ProviderUnavailable, $"Could not reach the provider ({http.HttpRequestError}).", true, provider)
        : new ExecutionError(ExecutionErrorCodes.ProviderTimeout, "The provider did not answer in time.", true, provider));

    /// <summary>Writes what a call cut short came to (see <see cref="Cut"/>), after its start when that was not waited for.</summary>
    private async Task EndCutAsync(Cut cut, InFlightCall call, Execution execution, RouteDefinition route, DateTimeOffset startedAt, long elapsedMs, Task<Execution?>? starting)
    {
        inFlight.Unregister(call);
        if (cut is Cut.Expired)
        {
            var cutShort = new AttemptRecord(execution.Attempts, route.Provider, route.ProviderModel, "expired", startedAt, elapsedMs);
            await Task.WhenAll(
                store.TransitionAsync(ExecutionTransition.Expire(execution.Id) with { Attempt = cutShort, Pipelined = starting is not null }, CancellationToken.None),
                starting ?? Task.FromResult<Execution?>(null));
            return;
        }

        if (!await StartedAsync(starting) || cut is Cut.Cancelled)
        {
            return; // Cancelled, or its start found it moved on: the store has the final state already.
        }

        if (cut is Cut.CircuitOpen)
        {
            await store.TransitionAsync(
                ExecutionTransition.Retry(execution.Id, [ExecutionStatus.Processing], time.GetUtcNow() + CircuitWait, null, null, node.Id) with { UndoAttempt = true },
                CancellationToken.None);
            return;
        }

        // Shutting down: hand the execution back now rather than wait for the lease to run out.
        await store.TransitionAsync(ExecutionTransition.Retry(execution.Id, [ExecutionStatus.Processing], time.GetUtcNow(), null, null, node.Id), CancellationToken.None);
    }

    /// <summary>Whether the attempt's start, when it was not waited for, was applied (false: the execution had moved on).</summary>
    private static async Task<bool> StartedAsync(Task<Execution?>? starting) => starting is null || await starting is not null;
}
