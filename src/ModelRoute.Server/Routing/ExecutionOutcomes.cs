using ModelRoute.Server.Operations;
using ModelRoute.Server.Providers;
using ModelRoute.Server.Storage;
using ModelRoute.Server.Storage.Artifacts;

namespace ModelRoute.Server.Routing;

/// <summary>
/// Turns a provider's answer into the execution's next state: completion with cost, a wait for a
/// callback, a retry with backoff, or failure. Dispatch, polls and callbacks all go through here.
/// </summary>
public sealed class ExecutionOutcomes(
    IExecutionStore store,
    IArtifactStore artifacts,
    ModelCatalog catalog,
    RoutePlanner planner,
    IOptions<ModelRouteOptions> options,
    TimeProvider time)
{
    /// <param name="pipelined">
    /// The attempt's start was queued and may not have committed yet (<see cref="ExecutionTransition.Pipelined"/>).
    /// </param>
    /// <returns>The execution as the outcome left it; null when it changed nothing (it had moved on, or is still running).</returns>
    public Task<Execution?> ApplyAsync(
        Execution execution,
        ProviderOutcome outcome,
        IReadOnlyCollection<ExecutionStatus> from,
        AttemptRecord? attempt,
        string? leaseOwner,
        CancellationToken cancellationToken,
        bool pipelined = false) =>
        outcome is ProviderOutcome.Running || !Telemetry.Source.HasListeners()
            ? ApplyOutcomeAsync(execution, outcome, from, attempt, leaseOwner, cancellationToken, pipelined)
            : SettleTracedAsync(execution, outcome, from, attempt, leaseOwner, cancellationToken, pipelined);

    /// <summary>
    /// <see cref="ApplyAsync"/> recorded in the execution's trace (docs/observability.md#traces) with the status it left the
    /// execution in and what was charged: on the current run's span, else in a <c>modelroute.execution.settle</c> span.
    /// </summary>
    private async Task<Execution?> SettleTracedAsync(
        Execution execution,
        ProviderOutcome outcome,
        IReadOnlyCollection<ExecutionStatus> from,
        AttemptRecord? attempt,
        string? leaseOwner,
        CancellationToken cancellationToken,
        bool pipelined)
    {
        // Within a run (the usual case) the run's span carries the settlement; a callback's or a sweep's has its own.
        var run = TraceContext.CurrentRun(execution.TraceParent);
        using var own = run is null ? TraceContext.Start("modelroute.execution.settle", execution.TraceParent) : null;
        var applied = await ApplyOutcomeAsync(execution, outcome, from, attempt, leaseOwner, cancellationToken, pipelined);
        if ((run ?? own) is { IsAllDataRequested: true } span)
        {
            span.SetTag(TraceTags.ExecutionId, execution.Id);
            span.SetTag(TraceTags.Outcome, AttemptTelemetry.OutcomeLabel(outcome));
            span.SetTag(TraceTags.Status, applied?.Status.ToWire() ?? "unchanged");
            span.SetTag(TraceTags.ChargedMicros, applied?.ChargedMicros ?? 0);
        }

        return applied;
    }

    private async Task<Execution?> ApplyOutcomeAsync(
        Execution execution,
        ProviderOutcome outcome,
        IReadOnlyCollection<ExecutionStatus> from,
        AttemptRecord? attempt,
        string? leaseOwner,
        CancellationToken cancellationToken,
        bool pipelined)
    {
        var dispatch = options.Value.Dispatch;
        switch (outcome)
        {
            case ProviderOutcome.Completed completed:
                return await CompleteAsync(execution, completed, from, attempt, leaseOwner, pipelined, cancellationToken);

            case ProviderOutcome.Accepted accepted:
                return await WriteAsync(
                    pipelined,
                    ExecutionTransition.AwaitCallback(execution.Id, leaseOwner!, accepted.JobId, time.GetUtcNow() + dispatch.CallbackPollInterval, attempt!),
                    cancellationToken);

            case ProviderOutcome.Failed failed:
                var now = time.GetUtcNow();
                if (now >= execution.ExpiresAt)
                {
                    return await WriteAsync(pipelined, ExecutionTransition.Expire(execution.Id) with { From = from, Attempt = attempt }, cancellationToken);
                }

                if (failed.Error.Retryable && execution.Attempts < dispatch.MaxAttempts && catalog.Find(execution.Model) is { } model)
                {
                    IReadOnlyList<AttemptRecord> log = attempt is null ? execution.AttemptLog : [.. execution.AttemptLog, attempt];
                    var next = planner.Next(model, log, Random.Shared.NextDouble());
                    if (next.Route is not null || next.HeldBack)
                    {
                        // Back off before trying the same route again; fail over to another at once.
                        var sameRoute = next.Route is { } route && RoutePlanner.IsSame(route, execution.Provider, execution.ProviderModel);
                        var delay = sameRoute || next.HeldBack
                            ? RetryBackoff.Delay(FailuresOnCurrentRoute(log, execution), dispatch.RetryBaseDelay, dispatch.RetryMaxDelay, failed.RetryAfter, Random.Shared.NextDouble())
                            : TimeSpan.Zero;
                        if (now + delay < execution.ExpiresAt)
                        {
                            return await WriteAsync(
                                pipelined,
                                ExecutionTransition.Retry(execution.Id, from, now + delay, failed.Error, attempt, leaseOwner),
                                cancellationToken);
                        }
                    }
                }

                return await WriteAsync(pipelined, ExecutionTransition.Fail(execution.Id, from, failed.Error, attempt, leaseOwner), cancellationToken);

            default:
                return null;
        }
    }

    /// <summary>
    /// Completes and settles. Outputs given as bytes are stored first; when any is given as a URL, the result is kept
    /// on the execution instead, which waits in PENDING for its outputs to be copied (<see cref="ArtifactCopies"/>):
    /// from then on a failed copy, a retry or a crash never calls the provider again (docs/artifacts.md).
    /// </summary>
    private async Task<Execution?> CompleteAsync(
        Execution execution,
        ProviderOutcome.Completed completed,
        IReadOnlyCollection<ExecutionStatus> from,
        AttemptRecord? attempt,
        string? leaseOwner,
        bool pipelined,
        CancellationToken cancellationToken)
    {
        var stored = new List<Artifact>();
        var kept = new List<KeptArtifact>();
        foreach (var artifact in completed.Artifacts)
        {
            if (artifact.Data is { } data)
            {
                var type = artifact.ContentType ?? "application/octet-stream";
                using var bytes = new MemoryStream(data, writable: false);
                var saved = await artifacts.SaveAsync(execution.Id, artifact.Name, type, bytes, long.MaxValue, cancellationToken);
                stored.Add(saved);
                kept.Add(new KeptArtifact(artifact.Name, type, null, saved.SizeBytes, saved.Sha256, saved.Store));
            }
            else if (artifact.Source is { } source)
            {
                kept.Add(new KeptArtifact(artifact.Name, artifact.ContentType, source));
            }
            else
            {
                var error = new ExecutionError(ExecutionErrorCodes.ProviderError, $"The provider gave the output '{artifact.Name}' neither as bytes nor as a URL.", false, execution.Provider);
                return await WriteAsync(pipelined, ExecutionTransition.Fail(execution.Id, from, error, attempt, leaseOwner), cancellationToken);
            }
        }

        if (stored.Count < kept.Count)
        {
            var result = new KeptResult(completed.Output, completed.Usage, kept).ToJson();
            var copyNow = ExecutionTransition.Retry(execution.Id, from, time.GetUtcNow(), null, attempt, leaseOwner) with { PendingResult = result };
            return await WriteAsync(pipelined, copyNow, cancellationToken);
        }

        var cost = execution.Price.CostOf(completed.Usage);
        return await WriteAsync(
            pipelined,
            ExecutionTransition.Complete(execution.Id, from, completed.Output, stored, completed.Usage, cost, attempt, leaseOwner),
            cancellationToken);
    }

    private Task<Execution?> WriteAsync(bool pipelined, ExecutionTransition transition, CancellationToken cancellationToken) =>
        store.TransitionAsync(pipelined ? transition with { Pipelined = true } : transition, cancellationToken);

    private static int FailuresOnCurrentRoute(IReadOnlyList<AttemptRecord> log, Execution execution) =>
        Math.Max(1, log.Count(a => a.Error is not null && a.Provider == execution.Provider && a.ProviderModel == execution.ProviderModel));

    public static string OutcomeName(ProviderOutcome outcome) => outcome switch
    {
        ProviderOutcome.Completed => "completed",
        ProviderOutcome.Accepted => "accepted",
        ProviderOutcome.Failed => "failed",
        _ => "running",
    };
}
