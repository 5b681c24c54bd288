namespace ModelRoute.Bench;

/// <summary>One store run of a repeated bench: its number, store, start (UTC), the load it started under, and its figures.</summary>
public sealed record BenchRun(int Number, string Store, DateTimeOffset StartedAt, LoadRecord Load, StoreResult Result);

/// <summary>The median submit p50 and p99 at one fixed rate over the runs that measured it, and how many of those had errors.</summary>
public sealed record RateMedian(double Rate, double P50Ms, double P99Ms, int Runs, int RunsWithErrors);

/// <summary>
/// A store's figures as the median over its runs that did not fail (<see cref="FailedRuns"/> are left out); null where
/// no run measured the figure. <see cref="MedianRun"/> is the run whose highest rate is the median (the nearest, the
/// first of them, with an even count): its detailed tables are the ones reported.
/// </summary>
public sealed record StoreMedians(
    string Store,
    IReadOnlyList<int> Runs,
    IReadOnlyList<int> FailedRuns,
    int? MedianRun,
    double? HighestRateUnder50MsP99,
    IReadOnlyList<RateMedian> FixedRates,
    double? EndToEndP50Ms,
    double? EndToEndP99Ms,
    int EndToEndMissing,
    double? WebhookDeliveriesPerSecond,
    double? WebhookFloodPerSecond,
    double? RssMaxMiB,
    long? FewestAwaiting,
    bool AllFlat,
    double? BaselineSequentialPerSecond,
    double? BaselineConcurrentPerSecond);

public static class Medians
{
    /// <summary>The median of the numbers (NaN ones left out): the middle one, or the mean of the middle two; null when there are none.</summary>
    public static double? Of(IEnumerable<double> values)
    {
        var sorted = values.Where(v => !double.IsNaN(v)).Order().ToArray();
        return sorted.Length == 0 ? null
            : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2]
            : Math.Round((sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2, 3);
    }

    /// <summary>Each store's medians over <paramref name="runs"/>, in the order the stores first ran.</summary>
    public static IReadOnlyList<StoreMedians> Compute(IReadOnlyList<BenchRun> runs) =>
        [.. runs.Select(r => r.Store).Distinct().Select(store => For(store, [.. runs.Where(r => r.Store == store)]))];

    public static StoreMedians For(string store, IReadOnlyList<BenchRun> runs)
    {
        var good = runs.Where(r => r.Result.Failure is null).ToList();
        var results = good.Select(r => r.Result).ToList();
        var withSubmit = good.Where(r => r.Result.Submit.Count > 0).ToList();
        var highest = Of(withSubmit.Select(r => r.Result.MaxRate.HighestRateUnder50MsP99));
        var medianRun = highest is { } h
            ? withSubmit.MinBy(r => Math.Abs(r.Result.MaxRate.HighestRateUnder50MsP99 - h))!.Number
            : good.FirstOrDefault()?.Number;
        var endToEnd = results.Where(r => r.EndToEnd is not null).Select(r => r.EndToEnd!).ToList();
        var memory = results.Where(r => r.Memory is not null).Select(r => r.Memory!).ToList();
        return new StoreMedians(
            store,
            [.. good.Select(r => r.Number)],
            [.. runs.Where(r => r.Result.Failure is not null).Select(r => r.Number)],
            medianRun,
            highest,
            FixedRates(results),
            Of(endToEnd.Select(e => e.Latency.P50Ms)),
            Of(endToEnd.Select(e => e.Latency.P99Ms)),
            endToEnd.Sum(e => e.Missing),
            Of(results.Where(r => r.FanOut is not null).Select(r => r.FanOut!.DeliveriesPerSecond)),
            Of(results.Where(r => r.Webhooks is not null).Select(r => r.Webhooks!.DeliveriesPerSecond)),
            Of(memory.Select(m => m.RssMaxMiB)),
            memory.Count == 0 ? null : memory.Min(m => m.Awaiting),
            memory.All(m => m.Flat),
            Of(results.Where(r => r.Baseline is not null).Select(r => r.Baseline!.SequentialInsertsPerSecond)),
            Of(results.Where(r => r.Baseline is not null).Select(r => r.Baseline!.ConcurrentInsertsPerSecond)));
    }

    /// <summary>The measurement of <paramref name="rate"/> a run counts: its latest fixed run at that rate, else a search step at it.</summary>
    public static RunResult? AtRate(StoreResult result, double rate) =>
        result.Submit.LastOrDefault(r => r.Rate == rate) ?? result.MaxRate.Steps.LastOrDefault(r => r.Rate == rate);

    private static IReadOnlyList<RateMedian> FixedRates(IReadOnlyList<StoreResult> results) =>
        [.. results.SelectMany(r => r.Submit.Select(s => s.Rate)).Distinct().Order().Select(rate =>
        {
            var at = results.Select(r => AtRate(r, rate)).OfType<RunResult>().ToList();
            return new RateMedian(rate, Of(at.Select(a => a.Latency.P50Ms)) ?? double.NaN, Of(at.Select(a => a.Latency.P99Ms)) ?? double.NaN, at.Count, at.Count(a => a.Errors > 0));
        })];
}
