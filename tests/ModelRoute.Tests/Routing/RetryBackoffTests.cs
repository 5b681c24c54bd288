using ModelRoute.Server.Routing;

namespace ModelRoute.Tests.Routing;

public sealed class RetryBackoffTests
{
    private static readonly TimeSpan Base = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Max = TimeSpan.FromSeconds(60);

    /// <summary>An exact duration from milliseconds (no floating-point truncation of ticks).</summary>
    private static TimeSpan Ms(double milliseconds) => TimeSpan.FromTicks((long)Math.Round(milliseconds * TimeSpan.TicksPerMillisecond));

    [Theory]
    [InlineData(1, 500.0)]
    [InlineData(2, 1_000.0)]
    [InlineData(3, 2_000.0)]
    [InlineData(4, 4_000.0)]
    [InlineData(5, 8_000.0)]
    public void With_no_jitter_the_delay_is_half_the_ceiling_and_doubles_per_attempt(int attempt, double milliseconds)
    {
        RetryBackoff.Delay(attempt, Base, Max, retryAfter: null, jitter: 0).ShouldBe(Ms(milliseconds));
    }

    [Theory]
    [InlineData(1, 999.5)]
    [InlineData(2, 1_999.0)]
    [InlineData(3, 3_998.0)]
    [InlineData(4, 7_996.0)]
    public void With_the_largest_jitter_the_delay_is_just_under_the_ceiling(int attempt, double milliseconds)
    {
        RetryBackoff.Delay(attempt, Base, Max, retryAfter: null, jitter: 0.999).ShouldBe(Ms(milliseconds));
    }

    [Fact]
    public void Every_delay_lies_between_half_and_all_of_the_ceiling()
    {
        for (var attempt = 1; attempt <= 12; attempt++)
        {
            var ceiling = TimeSpan.FromTicks(Math.Min(Max.Ticks, Base.Ticks << (attempt - 1)));
            for (var jitter = 0.0; jitter < 1.0; jitter += 0.125)
            {
                var delay = RetryBackoff.Delay(attempt, Base, Max, null, jitter);

                delay.ShouldBeGreaterThanOrEqualTo(ceiling / 2, $"attempt {attempt}, jitter {jitter}");
                delay.ShouldBeLessThan(ceiling, $"attempt {attempt}, jitter {jitter}");
            }
        }
    }

    [Fact]
    public void More_jitter_never_means_a_shorter_delay()
    {
        var previous = TimeSpan.Zero;
        for (var jitter = 0.0; jitter < 1.0; jitter += 0.01)
        {
            var delay = RetryBackoff.Delay(3, Base, Max, null, jitter);
            delay.ShouldBeGreaterThanOrEqualTo(previous);
            previous = delay;
        }
    }

    [Theory]
    [InlineData(7)] // 64 s would pass the 60 s cap
    [InlineData(20)]
    [InlineData(64)]
    [InlineData(int.MaxValue)]
    public void The_ceiling_is_capped_at_the_maximum_delay(int attempt)
    {
        RetryBackoff.Delay(attempt, Base, Max, null, jitter: 0).ShouldBe(TimeSpan.FromSeconds(30));
        RetryBackoff.Delay(attempt, Base, Max, null, jitter: 0.999).ShouldBe(Ms(59_970));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-3)]
    public void An_attempt_below_one_is_treated_as_the_first(int attempt)
    {
        RetryBackoff.Delay(attempt, Base, Max, null, jitter: 0).ShouldBe(Ms(500));
    }

    [Fact]
    public void A_retry_after_longer_than_the_backoff_wins()
    {
        RetryBackoff.Delay(1, Base, Max, retryAfter: TimeSpan.FromSeconds(10), jitter: 0).ShouldBe(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void A_retry_after_longer_than_the_maximum_delay_is_still_honoured()
    {
        RetryBackoff.Delay(30, Base, Max, retryAfter: TimeSpan.FromMinutes(5), jitter: 0.5).ShouldBe(TimeSpan.FromMinutes(5));
    }

    [Fact]
    public void A_retry_after_shorter_than_the_backoff_does_not_shorten_it()
    {
        RetryBackoff.Delay(3, Base, Max, retryAfter: TimeSpan.FromMilliseconds(100), jitter: 0).ShouldBe(TimeSpan.FromSeconds(2));
        RetryBackoff.Delay(3, Base, Max, retryAfter: TimeSpan.Zero, jitter: 0).ShouldBe(TimeSpan.FromSeconds(2));
    }

    [Fact]
    public void Millisecond_base_delays_scale_the_same_way()
    {
        var baseDelay = TimeSpan.FromMilliseconds(10);
        var maxDelay = TimeSpan.FromMilliseconds(100);

        RetryBackoff.Delay(1, baseDelay, maxDelay, null, 0).ShouldBe(TimeSpan.FromMilliseconds(5));
        RetryBackoff.Delay(4, baseDelay, maxDelay, null, 0).ShouldBe(TimeSpan.FromMilliseconds(40));
        RetryBackoff.Delay(5, baseDelay, maxDelay, null, 0).ShouldBe(TimeSpan.FromMilliseconds(50)); // 160 ms capped at 100
    }
}
