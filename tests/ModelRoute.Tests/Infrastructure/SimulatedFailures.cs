namespace ModelRoute.Tests.Infrastructure;

/// <summary>A number of calls to make throw, as an unreachable store would, counted as they fail. Thread-safe.</summary>
public sealed class SimulatedFailures
{
    private int _left;
    private int _failed;

    /// <summary>How many calls have been made to throw.</summary>
    public int Failed => Volatile.Read(ref _failed);

    /// <summary>Makes the next <paramref name="count"/> calls of <see cref="ThrowIfDue"/> throw.</summary>
    public void Next(int count) => Volatile.Write(ref _left, count);

    public void ThrowIfDue()
    {
        for (var left = Volatile.Read(ref _left); left > 0; left = Volatile.Read(ref _left))
        {
            if (Interlocked.CompareExchange(ref _left, left - 1, left) == left)
            {
                Interlocked.Increment(ref _failed);
                throw new InvalidOperationException("The store is unreachable (a test's simulated failure).");
            }
        }
    }
}
