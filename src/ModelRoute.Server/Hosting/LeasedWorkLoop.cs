using System.Threading.Channels;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Hosting;

/// <summary>What a background worker claims under a lease and runs; <see cref="LeasedWorkLoop{T}"/> drives it.</summary>
public interface ILeasedWork<T>
{
    /// <summary>
    /// Claims up to <paramref name="free"/> due items, leased to this node. When it claims none, it waits (for a
    /// signal that work may be due, or the next poll) before it returns, so that the loop does not spin.
    /// </summary>
    Task<IReadOnlyList<T>> ClaimAsync(int free, CancellationToken stoppingToken);

    /// <summary>Runs one leased item: claimed, or <paramref name="handedOver"/> by this node's own commit.</summary>
    Task RunAsync(T item, bool handedOver, CancellationToken cancellationToken);

    /// <summary>A claim failed for another reason than a store outage (which <see cref="StoreAvailability"/> logs once).</summary>
    void ClaimFailed(Exception exception);

    /// <summary>An item's run failed for another reason than a store outage: its lease runs out and it is taken up again.</summary>
    void RunFailed(T item, Exception exception);
}

/// <summary>
/// The loop both background workers (the dispatcher and the webhook delivery worker) run, described in
/// docs/architecture.md ("Workers"): wait until a place is free, claim at most that many due items under a lease
/// (the work decides how long to wait when there is none), start each one in its own place, and take what this node's
/// commits hand over without a claim. A failed claim is tried again after a short, growing pause
/// (<see cref="FailureBackoff"/>), and a store outage is reported to <see cref="StoreAvailability"/>, not logged at
/// every try. On the way out it stops claiming and taking hand-overs; <see cref="WhenIdleAsync"/> then waits for the
/// items still running, so none is dropped halfway while the host disposes of the store under it.
/// </summary>
public sealed class LeasedWorkLoop<T>(ILeasedWork<T> work, int maxInFlight, TimeSpan pollInterval, TimeProvider time, StoreAvailability? availability)
    : IDisposable
{
    // The most one claim asks for: a bigger batch would hold leases on work that waits behind the rest of it.
    private const int MaxClaim = 64;

    private readonly SemaphoreSlim _places = new(maxInFlight, maxInFlight);
    private readonly HashSet<Task> _running = [];

    /// <summary>The free places: a hand-over may reserve one by its count.</summary>
    public SemaphoreSlim Places => _places;

    /// <summary>
    /// Claims and starts due items until <paramref name="stoppingToken"/> fires. Each item runs with
    /// <paramref name="itemToken"/>: the stopping token to stop items with the loop, or a later one to let them finish.
    /// </summary>
    public async Task ClaimUntilStoppedAsync(CancellationToken stoppingToken, CancellationToken itemToken)
    {
        var backoff = new FailureBackoff(pollInterval);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await _places.WaitAsync(stoppingToken);
                _places.Release();
                var claimed = await work.ClaimAsync(Math.Min(_places.CurrentCount, MaxClaim), stoppingToken);
                backoff.Succeeded();
                foreach (var item in claimed)
                {
                    await _places.WaitAsync(stoppingToken);
                    Track(RunGuardedAsync(item, handedOver: false, itemToken));
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                // Not a whole poll: work due meanwhile (a retry's backoff ending) would wait for it.
                if (availability?.Report(ex) != true)
                {
                    work.ClaimFailed(ex);
                }

                await Task.Delay(backoff.Failed(), time, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    /// <summary>
    /// Starts each item this node's commits handed over, as soon as a place is free, until <paramref name="stoppingToken"/>
    /// fires. An item is read only once it has a place, so what is still queued then stays in <paramref name="handedOver"/>.
    /// </summary>
    public async Task TakeHandedOverAsync(ChannelReader<T> handedOver, Action taken, CancellationToken stoppingToken, CancellationToken itemToken)
    {
        try
        {
            while (await handedOver.WaitToReadAsync(stoppingToken))
            {
                while (handedOver.TryPeek(out _))
                {
                    await _places.WaitAsync(stoppingToken);
                    if (!handedOver.TryRead(out var item))
                    {
                        _places.Release();
                        break;
                    }

                    taken();
                    Track(RunGuardedAsync(item, handedOver: true, itemToken));
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping: what is still queued is leased to this node; the worker gives it back or lets the lease run out.
        }
    }

    /// <summary>Completes once every item started so far has finished.</summary>
    public Task WhenIdleAsync()
    {
        lock (_running)
        {
            return Task.WhenAll([.. _running]);
        }
    }

    public void Dispose() => _places.Dispose();

    private void Track(Task task)
    {
        lock (_running)
        {
            _running.Add(task);
        }

        _ = task.ContinueWith(t => { lock (_running) { _running.Remove(t); } }, TaskScheduler.Default);
    }

    private async Task RunGuardedAsync(T item, bool handedOver, CancellationToken itemToken)
    {
        await Task.Yield();
        try
        {
            await work.RunAsync(item, handedOver, itemToken);
        }
        catch (Exception ex) when (!itemToken.IsCancellationRequested)
        {
            // The lease runs out and the item is taken up again (by any node); nothing is lost.
            if (availability?.Report(ex) != true)
            {
                work.RunFailed(item, ex);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopped with the loop: the work handed the item back, or its lease runs out.
        }
        finally
        {
            _places.Release();
        }
    }
}
