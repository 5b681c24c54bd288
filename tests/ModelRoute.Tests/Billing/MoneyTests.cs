using ModelRoute.Server.Billing;

namespace ModelRoute.Tests.Billing;

public sealed class MoneyTests
{
    [Theory]
    [InlineData("0", 0L)]
    [InlineData("12", 12_000_000L)]
    [InlineData("0.15", 150_000L)]
    [InlineData("0.000001", 1L)]
    [InlineData("1.5", 1_500_000L)]
    [InlineData("0.014400", 14_400L)]
    [InlineData("007.25", 7_250_000L)]
    public void TryParseUsd_accepts_plain_non_negative_decimals_exactly(string text, long expected)
    {
        Money.TryParseUsd(text, out var micros).ShouldBeTrue(text);

        micros.ShouldBe(expected);
    }

    [Theory]
    [InlineData("")]
    [InlineData("-1")]
    [InlineData("+1")]
    [InlineData("1.")]
    [InlineData(".5")]
    [InlineData("1.1234567")]
    [InlineData("1e3")]
    [InlineData(" 1")]
    [InlineData("1 ")]
    [InlineData("abc")]
    [InlineData("1,5")]
    [InlineData("1.2.3")]
    [InlineData("NaN")]
    [InlineData("99999999999999999999")]
    public void TryParseUsd_rejects_anything_that_is_not_a_plain_non_negative_decimal(string text)
    {
        Money.TryParseUsd(text, out _).ShouldBeFalse($"'{text}' must be rejected");
    }

    [Fact]
    public void TryParseUsd_rejects_amounts_whose_micro_dollars_would_not_fit()
    {
        // 10^10 dollars is 10^16 micro-dollars: beyond the gateway's documented ceiling of 9·10^9 dollars.
        Money.TryParseUsd("10000000000", out _).ShouldBeFalse();
        Money.TryParseUsd("9000000000", out var ceiling).ShouldBeTrue();
        ceiling.ShouldBe(9_000_000_000L * Money.MicrosPerDollar);
    }

    [Theory]
    [InlineData(0L, "0.000000")]
    [InlineData(14_400L, "0.014400")]
    [InlineData(-5L, "-0.000005")]
    [InlineData(1L, "0.000001")]
    [InlineData(12_345_678L, "12.345678")]
    [InlineData(-1_500_000L, "-1.500000")]
    public void Format_shows_six_decimal_places(long micros, string expected)
    {
        Money.Format(micros).ShouldBe(expected);
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(1L)]
    [InlineData(14_400L)]
    [InlineData(999_999L)]
    [InlineData(123_456_789_012L)]
    public void Format_then_TryParseUsd_round_trips(long micros)
    {
        Money.TryParseUsd(Money.Format(micros), out var parsed).ShouldBeTrue();

        parsed.ShouldBe(micros);
    }

    [Theory]
    [InlineData(0L, 10_000L)] // the one-cent floor
    [InlineData(1L, 10_000L)]
    [InlineData(8_333L, 10_000L)] // 9999.6 rounds up to 10000
    [InlineData(8_334L, 10_001L)] // 10000.8 rounds up to 10001
    [InlineData(10_000L, 12_000L)]
    [InlineData(100_000L, 120_000L)]
    [InlineData(100_001L, 120_002L)] // 120001.2 rounds up, never down
    [InlineData(201_000L, 241_200L)]
    public void HoldFor_is_the_estimate_times_1_2_rounded_up_with_a_one_cent_floor(long estimate, long expected)
    {
        Money.HoldFor(estimate).ShouldBe(expected);
    }
}
