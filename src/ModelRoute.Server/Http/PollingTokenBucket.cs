using System.Threading.RateLimiting;

namespace ModelRoute.Server.Http;

/// <summary>
/// One API key's polling bucket (docs/api.md#errors-you-will-meet): holds at most <c>burst</c> permits and
/// gains <c>perSecond</c> of them per second of time that really passed, computed when asked. The
/// framework's token bucket, run by the partitioned limiter's timer, credited a full bucket's idle
/// time at the first refill after a burst, so an idle key got twice its burst; this one cannot.
/// </summary>
public sealed class PollingTokenBucket(int burst, int perSecond, TimeProvider time) : RateLimiter
{
    private readonly Lock _lock = new();
    private readonly double _ticksPerPermit = (double)time.TimestampFrequency / perSecond;
    private double _permits = burst;
    private long _at = time.GetTimestamp();

    /// <summary>How long the bucket has been full; the partitioned limiter drops buckets idle for a while (a new one starts full, as this one is).</summary>
    public override TimeSpan? IdleDuration
    {
        get
        {
            lock (_lock)
            {
                var fullAt = _at + (long)Math.Ceiling((burst - _permits) * _ticksPerPermit);
                var now = time.GetTimestamp();
                return now >= fullAt ? time.GetElapsedTime(fullAt, now) : null;
            }
        }
    }

    public override RateLimiterStatistics? GetStatistics()
    {
        lock (_lock)
        {
            Refill();
            return new RateLimiterStatistics { CurrentAvailablePermits = (long)_permits };
        }
    }

    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(permitCount, burst);
        lock (_lock)
        {
            Refill();
            var wanted = Math.Max(permitCount, 1);
            if (_permits >= wanted)
            {
                _permits -= permitCount;
                return Lease.Granted;
            }

            var wait = TimeSpan.FromSeconds((wanted - _permits) * _ticksPerPermit / time.TimestampFrequency);
            return new Lease(false, wait);
        }
    }

    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken) =>
        ValueTask.FromResult(AttemptAcquireCore(permitCount)); // no queue: a poll past the limit is answered 429 at once

    private void Refill()
    {
        var now = time.GetTimestamp();
        if (now > _at)
        {
            _permits = Math.Min(burst, _permits + ((now - _at) / _ticksPerPermit));
            _at = now;
        }
    }

    private sealed class Lease(bool acquired, TimeSpan? retryAfter) : RateLimitLease
    {
        public static readonly Lease Granted = new(true, null);

        public override bool IsAcquired => acquired;

        public override IEnumerable<string> MetadataNames => retryAfter is null ? [] : [MetadataName.RetryAfter.Name];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = retryAfter;
            return retryAfter is not null && metadataName == MetadataName.RetryAfter.Name;
        }
    }
}
