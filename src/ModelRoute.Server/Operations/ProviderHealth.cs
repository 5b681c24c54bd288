using System.Collections.Concurrent;

namespace ModelRoute.Server.Operations;

/// <summary>
/// Recent provider calls and ended executions on this node, for the operator's provider view
/// (docs/api.md#provider-health): each provider's last calls in a fixed ring (error rate and p50/p95 latency over the last
/// five minutes), and executions ended per second over the last minute. Recording is lock-free and allocates nothing:
/// a call costs one interlocked increment and one write, an ended execution one compare-and-swap. The reads, which
/// are rare, do the sorting.
/// </summary>
public sealed class ProviderHealth
{
    /// <summary>How far back calls count.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(5);

    /// <summary>Seconds of ended executions the throughput is averaged over.</summary>
    public const int ThroughputSeconds = 60;

    private readonly TimeProvider _time;
    private readonly DateTimeOffset _origin;
    private readonly ConcurrentDictionary<string, CallRing> _providers = new(StringComparer.Ordinal);
    private readonly SecondCounter _ended = new();
    private readonly SecondCounter _completed = new();

    public ProviderHealth(TimeProvider time)
    {
        _time = time;
        _origin = time.GetUtcNow();
    }

    /// <summary>
    /// A provider call ended with <paramref name="outcome"/> (an <see cref="Routing.AttemptTelemetry"/> outcome label). A
    /// call cut short by a cancel or the execution's deadline says nothing of the provider, and is not counted.
    /// </summary>
    public void CallEnded(string provider, string outcome, TimeSpan elapsed)
    {
        if (outcome is "cancelled" or "deadline_exceeded")
        {
            return;
        }

        if (!_providers.TryGetValue(provider, out var ring))
        {
            ring = _providers.GetOrAdd(provider, _ => new CallRing());
        }

        ring.Add(ElapsedMs(), (long)Math.Max(0, elapsed.TotalMilliseconds), IsProviderFailure(outcome));
    }

    /// <summary>An execution entered <paramref name="status"/> on this node; an ending counts towards the throughput.</summary>
    public void Entered(ExecutionStatus status)
    {
        if (!status.IsTerminal())
        {
            return;
        }

        var second = ElapsedMs() / 1000;
        _ended.Add(second);
        if (status == ExecutionStatus.Completed)
        {
            _completed.Add(second);
        }
    }

    /// <summary>The provider's calls in the window; <see cref="RecentCalls.Count"/> 0 when none.</summary>
    public RecentCalls Calls(string provider) =>
        _providers.TryGetValue(provider, out var ring) ? ring.Summarize(ElapsedMs() - (long)Window.TotalMilliseconds) : RecentCalls.None;

    /// <summary>Executions ended, and those completed, per second over the last <see cref="ThroughputSeconds"/> whole seconds (fewer just after start).</summary>
    public (double Ended, double Completed) Throughput()
    {
        var current = ElapsedMs() / 1000;
        var seconds = Math.Clamp(current, 1, ThroughputSeconds);
        return (_ended.Sum(current, seconds) / (double)seconds, _completed.Sum(current, seconds) / (double)seconds);
    }

    /// <summary>The provider's fault, not the request's: the normalized codes a circuit would count (docs/api.md#execution-errors).</summary>
    private static bool IsProviderFailure(string outcome) =>
        outcome is "provider_timeout" or "provider_unavailable" or "provider_rate_limited" or "provider_error" or "provider_auth_failed" or "internal_error";

    private long ElapsedMs() => Math.Max(0, (long)(_time.GetUtcNow() - _origin).TotalMilliseconds);

    /// <summary>The last <see cref="Size"/> calls of one provider, each packed in one long: time, latency, failed.</summary>
    private sealed class CallRing
    {
        private const int Size = 1024; // A power of two.
        private const long MaxLatencyMs = (1L << 21) - 1; // About 35 minutes.
        private readonly long[] _calls = new long[Size];
        private long _next;

        public void Add(long atMs, long latencyMs, bool failed)
        {
            // Times are stored plus one, so that an empty slot (0) is told from a call at the origin.
            var packed = ((atMs + 1) << 22) | (Math.Min(latencyMs, MaxLatencyMs) << 1) | (failed ? 1L : 0L);
            Volatile.Write(ref _calls[(Interlocked.Increment(ref _next) - 1) & (Size - 1)], packed);
        }

        public RecentCalls Summarize(long sinceMs)
        {
            var latencies = new List<long>(Size);
            var failures = 0;
            for (var i = 0; i < Size; i++)
            {
                var packed = Volatile.Read(ref _calls[i]);
                if (packed == 0 || (packed >> 22) - 1 < sinceMs)
                {
                    continue;
                }

                latencies.Add((packed >> 1) & MaxLatencyMs);
                failures += (int)(packed & 1);
            }

            if (latencies.Count == 0)
            {
                return RecentCalls.None;
            }

            latencies.Sort();
            return new RecentCalls(latencies.Count, failures, Rank(latencies, 50), Rank(latencies, 95));
        }

        /// <summary>The nearest-rank percentile.</summary>
        private static long Rank(List<long> sorted, int percentile) => sorted[Math.Max(0, (int)Math.Ceiling(sorted.Count * percentile / 100.0) - 1)];
    }

    /// <summary>Counts per second for the last 64 seconds, each slot its second and count in one long, moved by compare-and-swap.</summary>
    private sealed class SecondCounter
    {
        private const int Size = 64; // More than ThroughputSeconds, and a power of two.
        private readonly long[] _slots = new long[Size];

        public void Add(long second)
        {
            ref var slot = ref _slots[second & (Size - 1)];
            while (true)
            {
                var seen = Volatile.Read(ref slot);
                var next = (seen >> 32) == second ? seen + 1 : (second << 32) | 1;
                if (Interlocked.CompareExchange(ref slot, next, seen) == seen)
                {
                    return;
                }
            }
        }

        /// <summary>The counts of the <paramref name="seconds"/> whole seconds before <paramref name="current"/>.</summary>
        public long Sum(long current, long seconds)
        {
            long sum = 0;
            for (var second = current - seconds; second < current; second++)
            {
                var slot = Volatile.Read(ref _slots[second & (Size - 1)]);
                if (second >= 0 && (slot >> 32) == second)
                {
                    sum += slot & 0xFFFF_FFFF;
                }
            }

            return sum;
        }
    }
}

/// <summary>A provider's recent calls: how many, how many failed for the provider's reasons, and the p50/p95 latency.</summary>
public readonly record struct RecentCalls(int Count, int Failures, long P50Ms, long P95Ms)
{
    public static readonly RecentCalls None = new(0, 0, 0, 0);
}
