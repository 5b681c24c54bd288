using ModelRoute.Server.Operations;
using ModelRoute.Server.Providers;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Routing;

/// <summary>
/// Runs one execution leased to this node: copies the outputs of one the provider has answered, fails one with no
/// route left, holds one back (an open circuit, a provider at its limit, a capped account's hand-over), or makes its
/// provider call (<see cref="ProviderAttempt"/>).
/// </summary>
public sealed class LeasedExecutionRunner(
    IExecutionStore store,
    ExecutionChanges changes,
    ExecutionClaims claims,
    ModelCatalog catalog,
    RoutePlanner planner,
    ProviderRegistry providers,
    ArtifactCopies copies,
    AccountConcurrencyCaps caps,
    ProviderAttempt attempt,
    NodeIdentity node,
    TimeProvider time,
    ILogger<LeasedExecutionRunner> logger)
{
    private static readonly TimeSpan SlotBusyDelay = TimeSpan.FromMilliseconds(100);

    // How long claimed work whose provider slot was just taken waits for the next before it is given back: given back
    // at once, it would fall behind later work of its own account (docs/routing.md).
    private static readonly TimeSpan SlotWait = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Runs <paramref name="execution"/> in its log scope and its <c>modelroute.execution.run</c> span, parented on the
    /// trace context stored at submission: a run on another node after a crash stays in the same trace
    /// (docs/observability.md#traces).
    /// </summary>
    public async Task RunAsync(Execution execution, bool handedOver, CancellationToken stoppingToken)
    {
        using var scope = LogScopes.Execution(logger, execution.Id, execution.TraceParent);
        using var span = TraceContext.Start(TraceContext.RunSpan, execution.TraceParent);
        if (span is { IsAllDataRequested: true })
        {
            span.SetTag(TraceTags.ExecutionId, execution.Id);
            span.SetTag(TraceTags.Model, execution.Model);
            span.SetTag(TraceTags.Node, node.Id);
            span.SetTag(TraceTags.HandedOver, handedOver);
        }

        await RunLeasedAsync(execution, handedOver, stoppingToken);
    }

    private async Task RunLeasedAsync(Execution execution, bool handedOver, CancellationToken stoppingToken)
    {
        var starting = claims.PlaceOf(claimed: !handedOver);
        try
        {
            if (handedOver && (claims.WaitForProviders || caps.IsCapped(execution.AccountId)))
            {
                // Not claimed, so neither the account's cap nor its place was counted: while the providers' places are
                // scarce (or the account is capped) it is claimed like any other, at its place in its account's queue,
                // rather than start ahead of older work of its own account and of other accounts (docs/routing.md).
                await GiveBackUntilAsync(execution.Id, execution.CreatedAt, stoppingToken);
                return;
            }

            if (execution.PendingResult is not null)
            {
                // The provider has answered: only its outputs are left to copy, and it is never called again (docs/artifacts.md).
                await copies.CopyAsync(execution, stoppingToken);
                return;
            }

            var model = catalog.Find(execution.Model);
            var choice = model is null ? RouteChoice.Exhausted : planner.Next(model, execution.AttemptLog, Random.Shared.NextDouble());
            if (model is null || choice.Route is not { } route)
            {
                await NoRouteAsync(execution, model is null, choice, stoppingToken);
                return;
            }

            var provider = providers.Find(route.Provider)!;
            var acquired = provider.TryAcquire() || (!handedOver && await provider.AcquireAsync(SlotWait));
            starting.Done();
            if (!acquired)
            {
                // The provider is at its limit: hold the work back. A hand-over goes back to its place in its account's queue
                // (first in, first out), claimed when a place frees; work claimed meanwhile waits a moment, not to be claimed at once.
                await GiveBackUntilAsync(execution.Id, handedOver ? execution.CreatedAt : time.GetUtcNow() + SlotBusyDelay, stoppingToken);
                return;
            }

            try
            {
                await attempt.RunAsync(execution, model, route, provider, stoppingToken);
            }
            finally
            {
                // No wake-up for the claim loop here unless the providers' places bound its claims: work held back for this
                // provider comes due at its own time (GiveBackUntilAsync), and a claim now would find nothing.
                provider.Release();
                if (claims.WaitForProviders)
                {
                    changes.SignalWork();
                }
            }
        }
        finally
        {
            starting.Done();
        }
    }

    /// <summary>Hands a leased execution back to any node now (the dispatcher is stopping).</summary>
    public Task GiveBackAsync(Execution execution) => store.ReleaseClaimAsync(execution.Id, node.Id, time.GetUtcNow(), CancellationToken.None);

    /// <summary>No route to call: the model is gone or every route has been tried (it fails), or the rest wait for a circuit.</summary>
    private Task NoRouteAsync(Execution execution, bool modelGone, RouteChoice choice, CancellationToken stoppingToken)
    {
        if (modelGone)
        {
            var error = new ExecutionError(ExecutionErrorCodes.NoProviderAvailable, $"The model '{execution.Model}' is no longer configured.", false);
            return store.TransitionAsync(ExecutionTransition.Fail(execution.Id, [ExecutionStatus.Pending], error, null, node.Id), stoppingToken);
        }

        if (choice.HeldBack)
        {
            // Every route left is behind an open circuit: wait for a trial call rather than fail.
            return GiveBackUntilAsync(execution.Id, time.GetUtcNow() + ProviderAttempt.CircuitWait, stoppingToken);
        }

        var exhausted = execution.Error ?? new ExecutionError(ExecutionErrorCodes.NoProviderAvailable, "Every route of the model has been tried.", false);
        return store.TransitionAsync(ExecutionTransition.Fail(execution.Id, [ExecutionStatus.Pending], exhausted, null, node.Id), stoppingToken);
    }

    /// <summary>Gives a claimed execution back until <paramref name="notBefore"/>, and looks for it again then.</summary>
    private async Task GiveBackUntilAsync(string executionId, DateTimeOffset notBefore, CancellationToken stoppingToken)
    {
        await store.ReleaseClaimAsync(executionId, node.Id, notBefore, stoppingToken);
        changes.WorkDueAt(notBefore);
    }
}
