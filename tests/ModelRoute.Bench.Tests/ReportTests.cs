namespace ModelRoute.Bench.Tests;

/// <summary>The generated report of a repeated bench: the conditions each run started under, every run, the medians, the median run in detail.</summary>
public sealed class ReportTests
{
    [Fact]
    public void A_repeated_bench_reports_each_run_s_load_the_medians_and_the_median_run_in_detail()
    {
        BenchRun[] runs =
        [
            Runs.Run(1, "sqlite", 3000, [5, 9, 20, 80]),
            Runs.Run(2, "postgres", 1000, [10, 30]) with { Load = new LoadRecord(2.4, 2, 1.8, 600, true, false) },
            Runs.Run(3, "sqlite", 4000, [4, 6, 12, 60]),
            Runs.Failed(4, "postgres"),
            Runs.Run(5, "sqlite", 5000, [6, 7, 30, 90]) with { Load = new LoadRecord(1.2, 1.4, 1.5, 35, false, false) },
            Runs.Run(6, "postgres", 2000, [20, 40]),
        ];
        var medians = Medians.Compute(runs);
        var machine = new Machine(2, "test CPU", "4 GiB", "test OS", ".NET", "2026-12-06 10:00 UTC", "15", "runtime defaults", 0.3);
        var report = new BenchReport("full", machine, "notes", [runs[2].Result, runs[1].Result], RunsReport.Targets(medians), 1800, 3, 1.5, 600, runs, medians);

        var md = Report.Markdown(report);

        md.ShouldStartWith("## The published run\n");
        md.ShouldContain("`./bench/run.sh --repeat 3` (mode: **full**, 3 runs per store");
        md.ShouldContain("run 2 (PostgreSQL) 2.4 (above the limit after waiting 600 s)");
        md.ShouldContain("run 5 (SQLite) 1.2 (after waiting 35 s)");
        md.ShouldContain("> **Started above the load limit**: run 2 (PostgreSQL) at 2.4 after waiting 600 s.");
        md.ShouldContain("| **median** of 3 | SQLite | | | 4,000/s | 500/s: 5 ms; 1,000/s: 7 ms; 2,000/s: 20 ms; 4,000/s: 80 ms |");
        md.ShouldContain("| **median** of 2 (run 4 failed, left out) | PostgreSQL | | | 1,500/s |");
        md.ShouldContain("| 4 | PostgreSQL | 1970-01-01 00:00:00 | 0.5, 0.4, 0.3 | failed (left out of the medians): the gateway did not start |");
        md.ShouldContain("![Submit p99 against offered rate](benchmarks.svg)");
        md.ShouldContain("The detailed figures of run 3, the median run of the 3 SQLite runs");
        md.ShouldContain("The detailed figures of run 2, the median run of the 2 PostgreSQL runs");
    }

    [Fact]
    public void A_single_run_bench_reports_no_medians_and_no_waits()
    {
        BenchRun[] runs = [Runs.Run(1, "sqlite", 3000, [5, 9, 20, 80])];
        var medians = Medians.Compute(runs);
        var machine = new Machine(2, "test CPU", "4 GiB", "test OS", ".NET", "2026-12-06 10:00 UTC", null, "runtime defaults", 0.3);
        var report = new BenchReport("full", machine, "notes", [runs[0].Result], RunsReport.Targets(medians), 600, 1, 1.5, 600, runs, medians);

        var md = Report.Markdown(report);

        md.ShouldContain("`./bench/run.sh` (mode: **full**, one run per store;");
        md.ShouldNotContain("Started above the load limit");
        md.ShouldNotContain("The detailed figures of run");
        RunsReport.Targets(medians).First().Measured.ShouldBe("3,000/s");
    }
}
