namespace ModelRoute.Bench.Tests;

/// <summary>A repeated bench reports each store's median run by run, leaving failed runs out and saying so.</summary>
public sealed class MediansTests
{
    [Fact]
    public void The_median_of_an_odd_count_is_the_middle_one() => Medians.Of([9, 1, 4]).ShouldBe(4);

    [Fact]
    public void The_median_of_an_even_count_is_the_mean_of_the_middle_two() => Medians.Of([1, 10, 4, 2]).ShouldBe(3);

    [Fact]
    public void There_is_no_median_of_nothing() => Medians.Of([double.NaN]).ShouldBeNull();

    [Fact]
    public void Each_figure_is_the_median_over_the_store_s_runs_and_the_median_run_is_named()
    {
        var medians = Medians.For("sqlite", [
            Runs.Run(1, "sqlite", 3000, [5, 9, 20, 80], e2eP50: 2, fanOut: 3000, rss: 240),
            Runs.Run(3, "sqlite", 5000, [4, 6, 12, 60], e2eP50: 1, fanOut: 4000, rss: 260),
            Runs.Run(5, "sqlite", 4000, [6, 7, 30, 90], e2eP50: 5, fanOut: 3500, rss: 250),
        ]);

        medians.Runs.ShouldBe([1, 3, 5]);
        medians.FailedRuns.ShouldBeEmpty();
        medians.HighestRateUnder50MsP99.ShouldBe(4000);
        medians.MedianRun.ShouldBe(5);
        medians.FixedRates.Select(f => (f.Rate, f.P99Ms)).ShouldBe([(500, 5), (1000, 7), (2000, 20), (4000, 80)]);
        medians.EndToEndP50Ms.ShouldBe(2);
        medians.EndToEndP99Ms.ShouldBe(8);
        medians.WebhookDeliveriesPerSecond.ShouldBe(3500);
        medians.WebhookFloodPerSecond.ShouldBe(1750);
        medians.RssMaxMiB.ShouldBe(250);
        medians.BaselineSequentialPerSecond.ShouldBe(4000);
    }

    [Fact]
    public void A_failed_run_is_left_out_of_the_medians_and_named()
    {
        var medians = Medians.For("postgres", [
            Runs.Run(2, "postgres", 1000, [10, 30]),
            Runs.Failed(4, "postgres"),
            Runs.Run(6, "postgres", 2000, [20, 40]),
        ]);

        medians.Runs.ShouldBe([2, 6]);
        medians.FailedRuns.ShouldBe([4]);
        medians.HighestRateUnder50MsP99.ShouldBe(1500);
        medians.MedianRun.ShouldBe(2);
        medians.FixedRates.Select(f => (f.Rate, f.P99Ms, f.Runs)).ShouldBe([(500, 15, 2), (1000, 35, 2)]);
        RunsReport.Targets([medians]).ShouldContain(t => t.Verdict == "failed" && t.Measured.Contains("run 4 failed, left out of the medians"));
    }

    [Fact]
    public void When_every_run_failed_there_are_no_figures_and_the_targets_say_so()
    {
        var medians = Medians.For("sqlite", [Runs.Failed(1, "sqlite"), Runs.Failed(3, "sqlite")]);

        medians.Runs.ShouldBeEmpty();
        medians.MedianRun.ShouldBeNull();
        medians.HighestRateUnder50MsP99.ShouldBeNull();
        medians.FixedRates.ShouldBeEmpty();
        medians.EndToEndP50Ms.ShouldBeNull();
        RunsReport.Targets([medians]).ShouldHaveSingleItem().Measured.ShouldContain("no run to take a median of");
    }

    [Fact]
    public void The_targets_are_checked_against_the_medians()
    {
        var medians = Medians.Compute([
            Runs.Run(1, "sqlite", 6000, [3, 4, 30, 40]),
            Runs.Run(2, "sqlite", 4000, [3, 4, 20, 40]),
            Runs.Run(3, "sqlite", 5000, [3, 4, 10, 40]),
        ]);

        var targets = RunsReport.Targets(medians);

        targets.First(t => t.Target.Contains("5,000 durable")).ShouldSatisfyAllConditions(
            t => t.Measured.ShouldBe("5,000/s (median of 3 runs)"), t => t.Verdict.ShouldBe("met"));
        targets.First(t => t.Target.Contains("2,000 submits/s")).ShouldSatisfyAllConditions(
            t => t.Measured.ShouldStartWith("p99 20 ms (median of 3 runs)"), t => t.Verdict.ShouldBe("met"));
    }
}
