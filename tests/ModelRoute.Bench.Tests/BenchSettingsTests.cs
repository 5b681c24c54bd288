namespace ModelRoute.Bench.Tests;

/// <summary>The rate search and the length of its steps: what the published "highest rate" rests on.</summary>
public sealed class BenchSettingsTests
{
    [Theory]
    [InlineData(0, 250)] // Nothing passed yet: start low.
    [InlineData(2000, 4000)] // Up ×2 until a step fails.
    public void Without_a_failure_the_search_doubles_the_highest_rate_that_passed(double highestPass, double expected) =>
        BenchSettings.NextSearchRate(highestPass, null).ShouldBe(expected);

    [Theory]
    [InlineData(2000, 4000, 3000.0)]
    [InlineData(2000, 3000, 2500.0)]
    [InlineData(2500, 3000, 2750.0)]
    [InlineData(0, 250, null)] // Within 250 of each other: done.
    [InlineData(2750, 3000, null)]
    public void After_a_failure_the_search_bisects_on_steps_of_250_until_the_gap_is_small(double highestPass, double lowestFail, double? expected) =>
        BenchSettings.NextSearchRate(highestPass, lowestFail).ShouldBe(expected);

    [Fact]
    public void Fixed_rates_above_the_first_failure_wait_until_after_the_search()
    {
        BenchSettings.RunsAfterSearch([]).ShouldBeFalse();
        BenchSettings.RunsAfterSearch([Run(500, 10), Run(1000, 49.9)]).ShouldBeFalse();
        BenchSettings.RunsAfterSearch([Run(500, 10), Run(1000, 50)]).ShouldBeTrue("p99 at the limit fails");
        BenchSettings.RunsAfterSearch([Run(500, 10, errors: 1)]).ShouldBeTrue("an error fails");
        BenchSettings.RunsAfterSearch([Run(500, 120), Run(500, 10)]).ShouldBeFalse("a rate measured again counts by its latest run");
    }

    [Fact]
    public void A_failed_fixed_run_is_measured_once_more_before_it_holds_the_higher_rates_back()
    {
        var failed = Run(500, 120);
        BenchSettings.MeasureAgain([failed], failed, higherRatesLeft: true).ShouldBeTrue();
        BenchSettings.MeasureAgain([Run(250, 10), failed], failed, higherRatesLeft: true).ShouldBeTrue();
        BenchSettings.MeasureAgain([failed], failed, higherRatesLeft: false).ShouldBeFalse("the overload step holds nothing back");
        var again = Run(500, 130);
        BenchSettings.MeasureAgain([failed, again], again, higherRatesLeft: true).ShouldBeFalse("once only");
        var passed = Run(500, 10);
        BenchSettings.MeasureAgain([passed], passed, higherRatesLeft: true).ShouldBeFalse();
    }

    [Fact]
    public void A_single_failure_below_a_pass_is_measured_once_more_before_it_bounds_the_search()
    {
        BenchSettings.ConfirmFirst([Run(1000, 10), Run(500, 120), Run(2000, 80)]).ShouldBe(500);
        BenchSettings.ConfirmFirst([Run(1000, 10), Run(500, 120), Run(500, 12), Run(2000, 80)]).ShouldBeNull("once only");
        BenchSettings.ConfirmFirst([Run(1000, 10), Run(2000, 80)]).ShouldBeNull("a failure above every pass bounds at once");
    }

    [Fact]
    public void When_nothing_passed_the_lowest_failure_is_measured_once_more_so_one_stall_does_not_report_zero()
    {
        // PostgreSQL in two runs of one day: 500/s failed twice (a fixed run and its repeat), then the search's 250/s
        // step met a 290 ms WAL flush, and the run reported 0/s.
        BenchSettings.ConfirmFirst([Run(500, 52.8), Run(500, 52.4), Run(250, 212)]).ShouldBe(250);
        BenchSettings.ConfirmFirst([Run(500, 52.8), Run(500, 52.4), Run(250, 212), Run(250, 190)]).ShouldBeNull("measured twice, it stands");
    }

    private static RunResult Run(double rate, double p99, int errors = 0) =>
        new($"submit-{rate}", rate, 5, 100, 100 - errors, errors, 0, new LatencyStats(1, 2, p99, p99, p99, 1, 100), rate, 0, null);

    [Fact]
    public void A_wide_gap_always_gives_a_rate_strictly_between_the_pass_and_the_failure()
    {
        for (var pass = 0d; pass <= 6000; pass += 125)
        {
            for (var fail = pass + 1; fail <= 8000; fail += 97)
            {
                if (BenchSettings.NextSearchRate(pass, fail) is { } next)
                {
                    next.ShouldBeGreaterThan(pass, $"pass {pass}, fail {fail}");
                    next.ShouldBeLessThan(fail, $"pass {pass}, fail {fail}");
                }
            }
        }
    }

    [Theory]
    [InlineData(250, 12)] // 3,000 requests at 250/s.
    [InlineData(500, 6)]
    [InlineData(700, 5)] // 4.3 s, rounded up.
    [InlineData(1000, 3)] // Already 3,000 in the usual 3 s.
    [InlineData(4000, 3)]
    public void A_full_run_search_step_lasts_until_it_has_sent_at_least_3000_requests(double rate, double seconds)
    {
        var full = BenchSettings.For(quick: false);

        full.SearchStepLength(rate).ShouldBe(TimeSpan.FromSeconds(seconds));
        (full.SearchStepLength(rate).TotalSeconds * rate).ShouldBeGreaterThanOrEqualTo(full.SearchStepMinRequests);
    }

    [Fact]
    public void A_quick_run_keeps_its_one_second_steps_and_the_target_rate_is_always_run()
    {
        var quick = BenchSettings.For(quick: true);

        quick.SearchStepLength(250).ShouldBe(TimeSpan.FromSeconds(1));
        quick.FixedRates.ShouldContain(BenchSettings.TargetRate);
        BenchSettings.For(quick: false).FixedRates.ShouldContain(BenchSettings.TargetRate);
    }
}
