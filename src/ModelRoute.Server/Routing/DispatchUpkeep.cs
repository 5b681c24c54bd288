using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Routing;

/// <summary>
/// What keeps the dispatcher's running work valid while it runs: the leases of this node's provider calls, renewed
/// before they run out, and the accounts' concurrency caps, read again every second. It runs until the last call ends.
/// </summary>
public sealed partial class DispatchUpkeep(
    IExecutionStore store,
    IAccountStore accounts,
    InFlightExecutions inFlight,
    AccountConcurrencyCaps caps,
    NodeIdentity node,
    IOptions<ModelRouteOptions> options,
    TimeProvider time,
    ILogger<Dispatcher> logger,
    StoreAvailability? availability = null)
{
    private readonly DispatchOptions _options = options.Value.Dispatch;

    /// <summary>Renews leases and reads caps until <paramref name="callsEnded"/> fires.</summary>
    public Task RunAsync(CancellationToken callsEnded) => Task.WhenAll(RenewLeasesAsync(callsEnded), ReadCapsAsync(callsEnded));

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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Renewing the lease of {ExecutionId} failed; trying again at the next look")]
    private static partial void LogRenewalFailed(ILogger logger, string executionId, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reading the accounts' concurrency caps failed; trying again in a second")]
    private static partial void LogCapsFailed(ILogger logger, Exception exception);
}
