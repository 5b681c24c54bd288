namespace ModelRoute.Bench;

/// <summary>How long and how hard each measurement runs: quick (about a minute) or full (about ten on 2 cores).</summary>
public sealed record BenchSettings(
    bool Quick,
    double[] FixedRates,
    TimeSpan FixedDuration,
    TimeSpan SearchStepDuration,
    double GetRate,
    TimeSpan GetDuration,
    double EndToEndRate,
    TimeSpan EndToEndDuration,
    int WebhookFlood,
    int AwaitingExecutions,
    TimeSpan MemoryWindow,
    TimeSpan BaselineDuration)
{
    public const double P99LimitMs = 50;

    public static BenchSettings For(bool quick) => quick
        ? new(true, [500, 1000], TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(2), 1000, TimeSpan.FromSeconds(2),
            500, TimeSpan.FromSeconds(3), 2000, 10_000, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(1.5))
        : new(false, [500, 1000, 2000, 4000], TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(8), 2000, TimeSpan.FromSeconds(10),
            500, TimeSpan.FromSeconds(15), 20_000, 100_000, TimeSpan.FromSeconds(40), TimeSpan.FromSeconds(5));

    /// <summary>Rates the search for the highest rate with p99 under 50 ms tries, in order, until one fails.</summary>
    public IEnumerable<double> SearchRates() => Quick ? [250, 500, 1000, 2000, 3000, 5000] : [250, 500, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000, 16000];
}
