using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Routing;

/// <summary>
/// Claims due PENDING executions under a lease (or takes fresh ones this node's submissions handed
/// over, already leased: see <see cref="DispatchHandoff"/>) and runs each, in the shared
/// <see cref="LeasedWorkLoop{T}"/> (docs/architecture.md, "Workers"). How many to claim is
/// <see cref="ExecutionClaims"/>'s call, what to do with each <see cref="LeasedExecutionRunner"/>'s, and the
/// provider call <see cref="ProviderAttempt"/>'s. A crashed node's leases run out and any node resumes the work.
/// </summary>
public sealed partial class Dispatcher(
    ExecutionClaims claims,
    LeasedExecutionRunner runner,
    DispatchHandoff handoff,
    DispatchUpkeep upkeep,
    IOptions<ModelRouteOptions> options,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILogger<Dispatcher> logger,
    StoreAvailability? availability = null) : BackgroundService, ILeasedWork<Execution>
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!await ApplicationStartedAsync(stoppingToken))
        {
            return;
        }

        var dispatch = options.Value.Dispatch;
        using var loop = new LeasedWorkLoop<Execution>(this, dispatch.MaxInFlight, dispatch.PollInterval, time, availability);
        handoff.Open(loop.Places);
        var handedOver = loop.TakeHandedOverAsync(handoff.Reader, handoff.Taken, stoppingToken, stoppingToken);
        using var callsEnded = new CancellationTokenSource();
        var upkeeping = upkeep.RunAsync(callsEnded.Token);
        await loop.ClaimUntilStoppedAsync(stoppingToken, stoppingToken);

        // Stopping: calls in flight are cut short and handed back (ProviderAttempt); what is still queued is given back
        // below; the leases are kept until the last call has ended.
        handoff.Close();
        await handedOver;
        await GiveBackHandedOverAsync();
        await loop.WhenIdleAsync();
        callsEnded.Cancel();
        await upkeeping;
    }

    Task<IReadOnlyList<Execution>> ILeasedWork<Execution>.ClaimAsync(int free, CancellationToken stoppingToken) => claims.ClaimAsync(free, stoppingToken);

    Task ILeasedWork<Execution>.RunAsync(Execution execution, bool handedOver, CancellationToken cancellationToken) =>
        runner.RunAsync(execution, handedOver, cancellationToken);

    void ILeasedWork<Execution>.ClaimFailed(Exception exception) => LogLoopFailed(logger, exception);

    void ILeasedWork<Execution>.RunFailed(Execution execution, Exception exception) => LogRunFailed(logger, execution.Id, exception);

    /// <summary>
    /// Hosted services start before the server binds its addresses, and a callback URL is made from that address
    /// (unless PublicBaseUrl is set): dispatching earlier, after a restart with work waiting, failed callback
    /// executions with "no callback address". False: stopped first.
    /// </summary>
    private async Task<bool> ApplicationStartedAsync(CancellationToken stoppingToken)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        using (stoppingToken.Register(() => started.TrySetCanceled(stoppingToken)))
        {
            try
            {
                await started.Task;
                return true;
            }
            catch (OperationCanceledException)
            {
                return false;
            }
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
                await runner.GiveBackAsync(execution);
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

    [LoggerMessage(Level = LogLevel.Error, Message = "The dispatch loop failed; retrying")]
    private static partial void LogLoopFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Dispatching {ExecutionId} failed; its lease will run out and it will be retried")]
    private static partial void LogRunFailed(ILogger logger, string executionId, Exception exception);
}
