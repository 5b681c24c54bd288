namespace ModelRoute.Server.Executions;

/// <summary>
/// How many submit requests are storing their executions right now (a batch counts once).
/// Accepting work comes before working it off: a client waits on every submission, while
/// dispatch can catch up later. So while many are in flight, the dispatcher claims less and
/// waits for them to drain first, and a burst is taken durably at once instead of queueing
/// behind background writes.
/// </summary>
public sealed class SubmissionLoad
{
    /// <summary>At or above this many submissions in flight, background dispatch gives way.</summary>
    public const int Busy = 32;

    private int _inFlight;

    // Made by a waiter and completed by the submission that brings the count down: nothing is allocated while no one waits.
    private TaskCompletionSource? _calm;

    public int InFlight => Volatile.Read(ref _inFlight);

    public bool IsBusy => InFlight >= Busy;

    /// <summary>Counts one submission until the scope is disposed.</summary>
    public Scope Enter()
    {
        Interlocked.Increment(ref _inFlight);
        return new Scope(this);
    }

    /// <summary>Completes once fewer than half of <see cref="Busy"/> submissions are in flight, or after <paramref name="timeout"/>.</summary>
    public async Task WaitForCalmAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        if (InFlight < Busy / 2)
        {
            return;
        }

        var mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var calm = Interlocked.CompareExchange(ref _calm, mine, null) ?? mine;
        if (InFlight < Busy / 2)
        {
            ReleaseWaiter(); // The last submission left before the signal was in place.
        }

        await Task.WhenAny(calm.Task, Task.Delay(timeout, time, cancellationToken));
        cancellationToken.ThrowIfCancellationRequested();
    }

    private void Leave()
    {
        if (Interlocked.Decrement(ref _inFlight) < Busy / 2)
        {
            ReleaseWaiter();
        }
    }

    private void ReleaseWaiter()
    {
        if (Volatile.Read(ref _calm) is { } calm && Interlocked.CompareExchange(ref _calm, null, calm) == calm)
        {
            calm.TrySetResult();
        }
    }

    public readonly struct Scope(SubmissionLoad load) : IDisposable
    {
        public void Dispose() => load.Leave();
    }
}
