using System.Diagnostics;
using ModelRoute.Server.Storage;
using ModelRoute.Server.Storage.Artifacts;

namespace ModelRoute.Server.Routing;

/// <summary>
/// Copies the outputs of a provider result kept on a claimed PENDING execution (<see cref="Execution.PendingResult"/>)
/// into the artifact store, under the claim's lease, and then completes it. A copy that fails for a passing reason is
/// tried again on <see cref="ArtifactOptions.RetrySchedule"/> up to the deadline; a URL the network policy refuses, an
/// output over the size cap or a lasting 4xx fails the execution with PROVIDER_ERROR, nothing charged. None of these
/// calls the provider again, and none counts as a provider attempt (docs/artifacts.md).
/// </summary>
public sealed partial class ArtifactCopies(
    IExecutionStore store,
    IArtifactStore artifacts,
    ArtifactDownloader downloader,
    InFlightExecutions inFlight,
    NodeIdentity node,
    IOptions<ModelRouteOptions> options,
    TimeProvider time,
    ILogger<ArtifactCopies> logger)
{
    public const string Copied = "copied";
    public const string CopyFailed = "copy_failed";
    public const string CopyRefused = "copy_refused";

    /// <summary>Copies a claimed execution's kept outputs; its lease is kept meanwhile by the dispatcher's renewals.</summary>
    public async Task CopyAsync(Execution execution, CancellationToken stoppingToken)
    {
        var startedAt = time.GetUtcNow();
        var remaining = execution.ExpiresAt - startedAt;
        if (remaining <= TimeSpan.Zero)
        {
            await store.TransitionAsync(ExecutionTransition.Expire(execution.Id), CancellationToken.None);
            return;
        }

        var kept = KeptResult.Parse(execution.PendingResult!);
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        using var deadline = new CancellationTokenSource(remaining, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellation.Token, deadline.Token);
        var running = inFlight.Register(execution.Id, cancellation, startedAt);
        var stopwatch = Stopwatch.StartNew();
        (IReadOnlyList<Artifact>? Stored, ArtifactFetch? Failure) copy;
        try
        {
            copy = await CopyAllAsync(execution, kept, linked.Token);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down: give the copy back to any node now rather than when the lease runs out.
            await store.ReleaseClaimAsync(execution.Id, node.Id, time.GetUtcNow(), CancellationToken.None);
            return;
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            return; // Cancelled or expired elsewhere: the store has the final state.
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            var cut = Record(execution, "expired", startedAt, stopwatch, null);
            await store.TransitionAsync(ExecutionTransition.Expire(execution.Id) with { Attempt = cut }, CancellationToken.None);
            return;
        }
        finally
        {
            inFlight.Unregister(running);
        }

        await RecordAsync(execution, kept, copy, startedAt, stopwatch);
    }

    private async Task RecordAsync(Execution execution, KeptResult kept, (IReadOnlyList<Artifact>? Stored, ArtifactFetch? Failure) copy, DateTimeOffset startedAt, Stopwatch stopwatch)
    {
        if (copy.Stored is { } stored)
        {
            var cost = execution.Price.CostOf(kept.Usage);
            var done = Record(execution, Copied, startedAt, stopwatch, null);
            await store.TransitionAsync(
                ExecutionTransition.Complete(execution.Id, [ExecutionStatus.Pending], kept.Output, stored, kept.Usage, cost, done, node.Id),
                CancellationToken.None);
            return;
        }

        var failure = copy.Failure!;
        if (failure.Failure is ArtifactFetchFailure.Transient)
        {
            var error = new ExecutionError(ExecutionErrorCodes.ProviderUnavailable, failure.Error!, true, execution.Provider);
            var schedule = options.Value.Artifacts.Schedule;
            var failedBefore = execution.AttemptLog.Count(a => a.Outcome == CopyFailed && a.Number == execution.Attempts);
            var next = time.GetUtcNow() + schedule[Math.Min(failedBefore, schedule.Count - 1)];
            // Past the deadline the sweeper expires it: the wait never outlasts the execution.
            var retry = ExecutionTransition.Retry(
                execution.Id, [ExecutionStatus.Pending], next < execution.ExpiresAt ? next : execution.ExpiresAt, error, Record(execution, CopyFailed, startedAt, stopwatch, error), node.Id);
            await store.TransitionAsync(retry, CancellationToken.None);
            LogCopyFailed(logger, execution.Id, failure.Error!);
            return;
        }

        var final = new ExecutionError(ExecutionErrorCodes.ProviderError, failure.Error!, false, execution.Provider);
        var outcome = failure.Failure is ArtifactFetchFailure.Refused ? CopyRefused : CopyFailed;
        await store.TransitionAsync(
            ExecutionTransition.Fail(execution.Id, [ExecutionStatus.Pending], final, Record(execution, outcome, startedAt, stopwatch, final), node.Id),
            CancellationToken.None);
        LogCopyRefused(logger, execution.Id, failure.Error!);
    }

    /// <summary>Fetches and stores every output still at the provider; the stored outputs, or the first failure.</summary>
    private async Task<(IReadOnlyList<Artifact>? Stored, ArtifactFetch? Failure)> CopyAllAsync(Execution execution, KeptResult kept, CancellationToken cancellationToken)
    {
        var stored = new List<Artifact>(kept.Artifacts.Count);
        foreach (var artifact in kept.Artifacts)
        {
            if (artifact.Url is not { } url)
            {
                stored.Add(new Artifact(artifact.Name, artifact.ContentType ?? "application/octet-stream", artifact.SizeBytes ?? 0, artifact.Sha256, artifact.Store));
                continue;
            }

            var fetched = await downloader.FetchAsync(artifacts, execution.Id, artifact.Name, artifact.ContentType, url, execution.Provider, cancellationToken);
            if (fetched.Stored is not { } copied)
            {
                return (null, fetched);
            }

            stored.Add(copied);
        }

        return (stored, null);
    }

    /// <summary>A copy's line in the attempt log, under the number of the provider attempt whose result it copies.</summary>
    private static AttemptRecord Record(Execution execution, string outcome, DateTimeOffset startedAt, Stopwatch stopwatch, ExecutionError? error) =>
        new(execution.Attempts, execution.Provider ?? "", execution.ProviderModel ?? "", outcome, startedAt, stopwatch.ElapsedMilliseconds, error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Copying the outputs of {ExecutionId} failed ({Error}); trying again later")]
    private static partial void LogCopyFailed(ILogger logger, string executionId, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The outputs of {ExecutionId} were not copied ({Error}); the execution fails")]
    private static partial void LogCopyRefused(ILogger logger, string executionId, string error);
}
