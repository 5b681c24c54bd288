namespace ModelRoute.Server.Hosting;

/// <summary>
/// How long a background loop waits after a failed pass: <see cref="First"/> after the first failure, doubling while
/// failures follow each other, never more than the loop's poll interval; a pass that works starts it over. A
/// transient fault (a dropped connection, a deadlock victim) then costs its loop a moment, not a whole poll, while a
/// database that stays down is not hammered. Not thread-safe: one per loop.
/// </summary>
public sealed class FailureBackoff(TimeSpan max)
{
    /// <summary>The wait after the first failure of a run of them.</summary>
    public static readonly TimeSpan First = TimeSpan.FromMilliseconds(100);

    private TimeSpan _next = First;

    /// <summary>The wait after one more failure.</summary>
    public TimeSpan Failed()
    {
        var wait = _next < max ? _next : max;
        if (_next < max)
        {
            _next *= 2;
        }

        return wait;
    }

    /// <summary>A pass worked: the next failure waits <see cref="First"/> again.</summary>
    public void Succeeded() => _next = First;
}
