namespace ModelRoute.Tests.Executions;

/// <summary>
/// docs/api.md#the-account-event-feed: what the account feed re-reads. On PostgreSQL an event may become visible just
/// after one with a higher sequence was sent; the feed still sends it, once.
/// </summary>
public sealed class FeedCursorTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void An_event_seen_after_a_higher_one_is_still_sent_and_nothing_is_sent_twice()
    {
        var cursor = new FeedCursor(10, Start);

        cursor.Take(12).ShouldBeTrue();
        cursor.Take(12).ShouldBeFalse("sent already");
        cursor.Advance(Start + TimeSpan.FromSeconds(1));
        cursor.Floor.ShouldBe(10, "the floor trails what was sent");
        cursor.Take(11).ShouldBeTrue("committed late, behind 12");
        cursor.Take(10).ShouldBeFalse("the client had it");
        cursor.Last.ShouldBe(12);
    }

    [Fact]
    public void The_floor_rises_to_what_was_last_sent_a_settle_period_before()
    {
        var cursor = new FeedCursor(0, Start);
        cursor.Take(5).ShouldBeTrue();

        cursor.Advance(Start + FeedCursor.Settle);
        cursor.Floor.ShouldBe(0, "5 was sent less than a settle period ago");
        cursor.Take(3).ShouldBeTrue();
        cursor.Take(5).ShouldBeFalse();

        cursor.Advance(Start + (2 * FeedCursor.Settle));
        cursor.Floor.ShouldBe(5);
        cursor.Take(4).ShouldBeFalse("below the floor: taken never to come");
        cursor.Take(6).ShouldBeTrue();
    }

    [Fact]
    public void A_long_replay_trails_by_at_most_MaxTrail_events()
    {
        var cursor = new FeedCursor(0, Start);
        for (var sequence = 1; sequence <= FeedCursor.MaxTrail + 100; sequence++)
        {
            cursor.Take(sequence).ShouldBeTrue();
        }

        cursor.Floor.ShouldBe(100);
        cursor.Take(100).ShouldBeFalse();
        cursor.Take(101).ShouldBeFalse("sent, and still remembered");
    }
}
