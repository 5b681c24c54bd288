namespace ModelRoute.Bench.Tests;

/// <summary>Store runs made up for the report's tests: fixed-rate submits with given p99s, and the headline figures.</summary>
internal static class Runs
{
    public static RunResult Submit(double rate, double p99, int errors = 0) =>
        new("submit", rate, 5, 100, 100 - errors, errors, 0, new LatencyStats(p99 / 3, p99 / 2, p99, p99 * 1.2, p99 * 1.5, p99 / 3, 100), rate, 0, null);

    public static BenchRun Run(int number, string store, double highest, double[] p99s, double e2eP50 = 2, double fanOut = 3500, double rss = 250) =>
        new(number, store, DateTimeOffset.UnixEpoch, new LoadRecord(0.5, 0.4, 0.3, 0, false, false),
            new StoreResult(store, [.. p99s.Select((p, i) => Submit(Rates[i], p))], new SearchResult(highest, null, [Submit(highest, 40)]), null,
                new EndToEndResult(500, 100, 0, 100, 0, new LatencyStats(e2eP50, e2eP50, e2eP50 * 4, e2eP50 * 5, e2eP50 * 6, e2eP50, 100), 0, 0),
                new WebhookFloodResult(1000, 1000, 1000, fanOut / 2, 1, 1, false),
                new WebhookFanOutResult(100, 100, 10_000, 10_000, fanOut, 3, 3, 0),
                new MemoryResult(100_000, 100_000, 100_000, 30, false, 100, rss, rss - 5, rss, 0.1, rss, true, [], []),
                new BaselineResult("test", 4000, 8, 6000, null), 0.5, 0.3, [], null));

    public static BenchRun Failed(int number, string store) =>
        new(number, store, DateTimeOffset.UnixEpoch, new LoadRecord(0.5, 0.4, 0.3, 0, false, false),
            new StoreResult(store, [], new SearchResult(0, null, []), null, null, null, null, null, null, 0, 0, [], "the gateway did not start"));

    public static readonly double[] Rates = [500, 1000, 2000, 4000];
}
