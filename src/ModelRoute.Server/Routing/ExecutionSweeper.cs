using ModelRoute.Server.Providers;
using ModelRoute.Server.Storage;
using ModelRoute.Server.Storage.Artifacts;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Server.Routing;

/// <summary>
/// The periodic jobs: expire what is past its deadline, hand back work whose worker's lease ran
/// out, and poll async providers whose callback is late. Each step is a conditional write, so
/// any number of nodes may run it at once.
/// </summary>
public sealed partial class ExecutionSweeper(
    IExecutionStore store,
    ProviderRegistry providers,
    ExecutionOutcomes outcomes,
    InFlightExecutions inFlight,
    ProviderCancellation providerCancellation,
    IArtifactStore artifacts,
    IWebhookStore webhooks,
    IOptions<ModelRouteOptions> options,
    TimeProvider time,
    ILogger<ExecutionSweeper> logger,
    StoreAvailability? availability = null) : BackgroundService
{
    private const int BatchSize = 200;
    private static readonly TimeSpan PurgeInterval = TimeSpan.FromMinutes(10);
    private DateTimeOffset _nextPurge = DateTimeOffset.MinValue;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = options.Value.Dispatch.SweepInterval;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await SweepOnceAsync(stoppingToken);
                await Task.Delay(interval, time, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                // The pause ends at shutdown: stopping must not wait out a whole interval.
                if (availability?.Report(ex) != true)
                {
                    LogSweepFailed(logger, ex);
                }

                await Task.Delay(interval, time, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    public async Task SweepOnceAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        foreach (var id in await store.ListExpiredAsync(now, BatchSize, cancellationToken))
        {
            if (await store.TransitionAsync(ExecutionTransition.Expire(id), cancellationToken) is { } expired)
            {
                inFlight.Stop(id);
                providerCancellation.Request(expired);
            }
        }

        foreach (var abandoned in await store.ListAbandonedAsync(now, BatchSize, cancellationToken))
        {
            var handBack = ExecutionTransition.Retry(abandoned.Id, [ExecutionStatus.Processing], now, null, null) with { LeaseExpiredBy = now };
            if (await store.TransitionAsync(handBack, cancellationToken) is not null)
            {
                LogHandedBack(logger, abandoned.Id, abandoned.LeaseOwner ?? "?");
            }
        }

        if (now >= _nextPurge)
        {
            _nextPurge = now + PurgeInterval;
            await PurgeAsync(now - options.Value.Retention, cancellationToken);
        }

        var polls = await store.ClaimDuePollsAsync(BatchSize, now, now + options.Value.Dispatch.CallbackPollInterval, cancellationToken);
        foreach (var awaiting in polls)
        {
            await PollAsync(awaiting, cancellationToken);
        }
    }

    /// <summary>
    /// Forgets ended executions past the retention period, a batch at a time, clearing artifacts only from the stores the
    /// purge says hold some (most executions keep none: no store is asked about them); then old test deliveries.
    /// </summary>
    public async Task PurgeAsync(DateTimeOffset endedBefore, CancellationToken cancellationToken)
    {
        IReadOnlyList<PurgedExecution> purged;
        do
        {
            purged = await store.PurgeAsync(endedBefore, BatchSize, cancellationToken);
            foreach (var execution in purged.Where(p => p.ArtifactStores.Count > 0))
            {
                await artifacts.DeleteAllAsync(execution.Id, execution.ArtifactStores, cancellationToken);
            }
        }
        while (purged.Count == BatchSize);

        int forgotten;
        do
        {
            forgotten = await webhooks.PurgeTestDeliveriesAsync(endedBefore, BatchSize, cancellationToken);
        }
        while (forgotten == BatchSize);
    }

    /// <summary>Asks the provider itself, since its callback has not come.</summary>
    private async Task PollAsync(Execution execution, CancellationToken cancellationToken)
    {
        if (providers.CallFor(execution) is not ({ } provider, { } call))
        {
            return;
        }

        try
        {
            var outcome = await provider.Adapter.PollAsync(call, cancellationToken);
            if (outcome is ProviderOutcome.Running)
            {
                return;
            }

            var attempt = new AttemptRecord(execution.Attempts, call.Route.Provider, call.Route.ProviderModel, "polled_" + ExecutionOutcomes.OutcomeName(outcome), time.GetUtcNow(), 0, (outcome as ProviderOutcome.Failed)?.Error);
            await outcomes.ApplyAsync(execution, outcome, [ExecutionStatus.AwaitingWebhook], attempt, null, cancellationToken);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            // One execution's poll must not stop the others': it is asked again on its next turn.
            if (availability?.Report(ex) != true)
            {
                LogPollFailed(logger, execution.Id, ex.GetType().Name);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "The sweep failed; retrying")]
    private static partial void LogSweepFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Handed back {ExecutionId}: the lease of {Owner} ran out")]
    private static partial void LogHandedBack(ILogger logger, string executionId, string owner);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Asking the provider about {ExecutionId} failed ({Error}); will try again")]
    private static partial void LogPollFailed(ILogger logger, string executionId, string error);
}
