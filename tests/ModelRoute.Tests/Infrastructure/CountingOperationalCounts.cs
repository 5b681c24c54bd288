namespace ModelRoute.Tests.Infrastructure;

/// <summary>
/// The store's operational counts as fixed figures (or a failure, when set), counting how often they were asked for: for
/// checking that the gauges and the admin overview read the last sample rather than the store.
/// </summary>
public sealed class CountingOperationalCounts : IOperationalCounts
{
    private int _calls;

    public int Calls => Volatile.Read(ref _calls);

    public Exception? Failure { get; set; }

    public OperationalCounts Result { get; set; } = new(5, 1, 0, 1234, 0, 2, 0);

    public Task<OperationalCounts> CountAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _calls);
        return Failure is { } failure ? Task.FromException<OperationalCounts>(failure) : Task.FromResult(Result);
    }
}
