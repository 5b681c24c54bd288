namespace ModelRoute.Bench;

/// <summary>
/// How long and how hard each measurement runs. Every wait has a cap, so that a slow gateway makes the figures worse,
/// never the run longer: quick mode fits in about a minute for both stores, full mode in about ten, on 2 cores.
/// </summary>
public sealed record BenchSettings(
    bool Quick,
    TimeSpan Warmup,
    TimeSpan WarmupBurst,
    double[] FixedRates,
    TimeSpan FixedDuration,
    int SearchMaxSteps,
    TimeSpan SearchStepDuration,
    int SearchStepMinRequests,
    TimeSpan RequestDrainLimit,
    TimeSpan BacklogDrainLimit,
    TimeSpan PhaseDrainLimit,
    TimeSpan SearchDrainLimit,
    double GetRate,
    TimeSpan GetDuration,
    double EndToEndRate,
    TimeSpan EndToEndDuration,
    TimeSpan EndToEndWaitLimit,
    int WebhookFlood,
    TimeSpan FloodWaitLimit,
    int AwaitingExecutions,
    int FillConcurrency,
    TimeSpan FillLimit,
    TimeSpan MemoryWindow,
    TimeSpan BaselineDuration)
{
    public const double P99LimitMs = 50;

    /// <summary>The fixed rate behind the "SQLite p99 ≤ 25 ms at 2,000/s" target; always among <see cref="FixedRates"/>.</summary>
    public const double TargetRate = 2000;

    public static BenchSettings For(bool quick) => quick
        ? new(
            Quick: true,
            Warmup: TimeSpan.FromSeconds(2),
            WarmupBurst: TimeSpan.Zero,
            FixedRates: [500, TargetRate],
            FixedDuration: TimeSpan.FromSeconds(1),
            SearchMaxSteps: 2,
            SearchStepDuration: TimeSpan.FromSeconds(1),
            SearchStepMinRequests: 0,
            RequestDrainLimit: TimeSpan.FromSeconds(0.5),
            BacklogDrainLimit: TimeSpan.FromSeconds(0.5),
            PhaseDrainLimit: TimeSpan.FromSeconds(0.5),
            SearchDrainLimit: TimeSpan.FromSeconds(0.5),
            GetRate: 1000,
            GetDuration: TimeSpan.FromSeconds(1),
            EndToEndRate: 500,
            EndToEndDuration: TimeSpan.FromSeconds(1),
            EndToEndWaitLimit: TimeSpan.FromSeconds(1.5),
            WebhookFlood: 1000,
            FloodWaitLimit: TimeSpan.FromSeconds(2),
            AwaitingExecutions: 10_000,
            FillConcurrency: 4,
            FillLimit: TimeSpan.FromSeconds(4),
            MemoryWindow: TimeSpan.FromSeconds(2),
            BaselineDuration: TimeSpan.FromSeconds(0.5))
        : new(
            Quick: false,
            Warmup: TimeSpan.FromSeconds(10),
            WarmupBurst: TimeSpan.FromSeconds(3),
            FixedRates: [500, 1000, TargetRate, 4000],
            FixedDuration: TimeSpan.FromSeconds(5),
            SearchMaxSteps: 5,
            SearchStepDuration: TimeSpan.FromSeconds(3),
            // A p99 from a few hundred requests is the few slowest of them: a step at a low rate runs until it has sent this many.
            SearchStepMinRequests: 3000,
            RequestDrainLimit: TimeSpan.FromSeconds(2),
            BacklogDrainLimit: TimeSpan.FromSeconds(3),
            PhaseDrainLimit: TimeSpan.FromSeconds(10),
            // A search step started on top of an earlier step's (or the 4,000/s run's) backlog measures both: it waits
            // for the backlog to clear first, up to this long (PostgreSQL works off about 1,000 a second here).
            SearchDrainLimit: TimeSpan.FromSeconds(20),
            GetRate: 2000,
            GetDuration: TimeSpan.FromSeconds(5),
            EndToEndRate: 500,
            EndToEndDuration: TimeSpan.FromSeconds(10),
            EndToEndWaitLimit: TimeSpan.FromSeconds(8),
            WebhookFlood: 10_000,
            FloodWaitLimit: TimeSpan.FromSeconds(20),
            AwaitingExecutions: 100_000,
            FillConcurrency: 8,
            FillLimit: TimeSpan.FromSeconds(80),
            MemoryWindow: TimeSpan.FromSeconds(15),
            BaselineDuration: TimeSpan.FromSeconds(3));

    /// <summary>
    /// Whether a fixed rate waits until after the rate search: every rate above the first that failed does (a rate
    /// measured again counts by its latest run). Run before it, such an overload step left a backlog (and PostgreSQL
    /// the vacuum of it) that the search's first steps measured instead of the gateway: it failed PostgreSQL at 250/s
    /// right after 4,000/s, where it passed 500/s before.
    /// </summary>
    public static bool RunsAfterSearch(IEnumerable<RunResult> fixedRunsSoFar) =>
        fixedRunsSoFar.GroupBy(r => r.Rate).Any(g => !g.Last().MeetsP99(P99LimitMs));

    /// <summary>
    /// Whether a fixed run that failed is measured once more at once, before it holds the higher rates back: on a shared
    /// host one run can meet a pause (a checkpoint, another tenant's burst) that the next does not, and with the higher
    /// rates not yet run the search's own check (a failure below a pass is measured again) has nothing to compare with.
    /// The highest fixed rate (the overload step) holds nothing back, so it is not measured again.
    /// </summary>
    public static bool MeasureAgain(IReadOnlyList<RunResult> fixedRunsSoFar, RunResult latest, bool higherRatesLeft) =>
        higherRatesLeft && !latest.MeetsP99(P99LimitMs) && fixedRunsSoFar.Count(r => r.Rate == latest.Rate) == 1;

    /// <summary>
    /// The failing rate the search measures once more before it lets the rate bound the result, if any: one measured
    /// only once below a rate that passed (noise cannot make a pass above a failure count), or, when no rate passed at
    /// all, the lowest failure, so that one stall (a WAL flush of the host's disk that took 290 ms) does not make the
    /// result 0/s. A rate measured twice counts by its second run.
    /// </summary>
    public static double? ConfirmFirst(IReadOnlyList<RunResult> runs)
    {
        var once = runs.Where(r => !r.MeetsP99(P99LimitMs) && runs.Count(o => o.Rate == r.Rate) == 1).ToList();
        var belowPass = once.Where(r => runs.Any(o => o.Rate > r.Rate && o.MeetsP99(P99LimitMs))).Select(r => (double?)r.Rate).Min();
        return belowPass ?? (runs.Any(r => r.MeetsP99(P99LimitMs)) ? null : once.Select(r => (double?)r.Rate).Min());
    }

    /// <summary>
    /// The rate search, seeded with the fixed-rate runs: step up ×2 from the highest rate that passed until one fails
    /// (or the steps run out), then bisect between the last pass and the first failure, down to about 10 %.
    /// </summary>
    public static double? NextSearchRate(double highestPass, double? lowestFail)
    {
        if (lowestFail is not { } fail)
        {
            return highestPass <= 0 ? 250 : highestPass * 2;
        }

        if (fail - highestPass <= Math.Max(250, highestPass * 0.1))
        {
            return null;
        }

        var middle = Math.Round((highestPass + fail) / 2 / 250) * 250;
        return middle <= highestPass || middle >= fail ? Math.Round((highestPass + fail) / 2) : middle;
    }

    /// <summary>How long a rate search step at <paramref name="rate"/> runs: <see cref="SearchStepDuration"/>, or longer at a low rate, so that its p99 comes from at least <see cref="SearchStepMinRequests"/> requests.</summary>
    public TimeSpan SearchStepLength(double rate) =>
        rate > 0 && SearchStepMinRequests / rate > SearchStepDuration.TotalSeconds ? TimeSpan.FromSeconds(Math.Ceiling(SearchStepMinRequests / rate)) : SearchStepDuration;
}
