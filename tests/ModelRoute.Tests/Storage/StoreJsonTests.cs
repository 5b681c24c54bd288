using ModelRoute.Server.Billing;
using Shouldly;
using Xunit;

namespace ModelRoute.Tests.Storage;

/// <summary>Structured columns read back from their stored JSON text.</summary>
public sealed class StoreJsonTests
{
    [Fact]
    public void A_stored_price_reads_back_as_written_and_one_text_is_parsed_once()
    {
        var price = new Price(InputPerMTok: 1_250_000, OutputPerMTok: 10_000_000, CachedInputPerMTok: 125_000, PerRequest: 7);
        var text = StoreJson.Serialize(price);

        var first = StoreJson.Price(text);
        var again = StoreJson.Price(new string(text.AsSpan())); // the same text in another string, as each row reads it

        first.ShouldBe(price);
        again.ShouldBeSameAs(first);
    }

    [Fact]
    public void Prices_beyond_what_the_cache_keeps_still_read_back_each_as_written()
    {
        // More distinct prices than the cache holds (a price changed again and again): each is still its own, after
        // the cache has started over as well.
        for (var round = 0; round < 2; round++)
        {
            for (var i = 1; i <= 1_500; i++)
            {
                var price = new Price(InputPerMTok: i, PerImage: i * 2L);
                StoreJson.Price(StoreJson.Serialize(price)).ShouldBe(price);
            }
        }
    }

    [Fact]
    public void Empty_lists_and_missing_columns_read_as_empty_lists()
    {
        StoreJson.Attempts("[]").ShouldBeEmpty();
        StoreJson.Attempts(null).ShouldBeEmpty();
        StoreJson.Artifacts("[]").ShouldBeEmpty();
        StoreJson.Artifacts(null).ShouldBeEmpty();
        var attempt = new ModelRoute.Server.Executions.AttemptRecord(1, "sim", "text", "succeeded", DateTimeOffset.FromUnixTimeMilliseconds(1_000), 3);
        StoreJson.Attempts(StoreJson.Serialize(new[] { attempt })).ShouldBe([attempt]);
    }
}
