namespace ModelRoute.Bench.Tests;

/// <summary>Percentiles come from every sample, nearest-rank, never interpolated below a sample that was seen.</summary>
public sealed class LatencyStatsTests
{
    [Fact]
    public void Percentiles_are_nearest_rank_over_every_sample()
    {
        var samples = Enumerable.Range(1, 1000).Select(i => (double)i).Reverse().ToList();

        var stats = LatencyStats.From(samples);

        stats.P50Ms.ShouldBe(500);
        stats.P90Ms.ShouldBe(900);
        stats.P99Ms.ShouldBe(990);
        stats.P999Ms.ShouldBe(999);
        stats.MaxMs.ShouldBe(1000);
        stats.Samples.ShouldBe(1000);
    }

    [Fact]
    public void A_few_samples_make_their_slowest_the_p99()
    {
        // Why a search step must send enough requests: with 50, p99 is simply the slowest one.
        var stats = LatencyStats.From([.. Enumerable.Repeat(2.0, 49), 80.0]);

        stats.P99Ms.ShouldBe(80);
        stats.P50Ms.ShouldBe(2);
    }

    [Fact]
    public void No_samples_give_no_figures_rather_than_zeros()
    {
        var stats = LatencyStats.From([]);

        double.IsNaN(stats.P99Ms).ShouldBeTrue();
        stats.Samples.ShouldBe(0);
    }
}
