using Microsoft.Extensions.Time.Testing;

namespace ModelRoute.Tests.Storage;

public sealed class IdGeneratorTests
{
    private const string Crockford = "0123456789abcdefghjkmnpqrstvwxyz";

    private static string Body(string id, string prefix)
    {
        id.ShouldStartWith(prefix + "_");
        return id[(prefix.Length + 1)..];
    }

    /// <summary>The first ten characters carry the 48-bit millisecond timestamp (the ULID layout).</summary>
    private static long TimestampOf(string body)
    {
        long ms = 0;
        foreach (var c in body[..10])
        {
            ms = (ms * 32) + Crockford.IndexOf(c, StringComparison.Ordinal);
        }

        return ms;
    }

    [Theory]
    [InlineData("exe")]
    [InlineData("evt")]
    [InlineData("txn")]
    [InlineData("acct")]
    public void An_id_is_the_prefix_and_26_lowercase_crockford_characters(string prefix)
    {
        var ids = new IdGenerator(new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero)));

        var id = ids.New(prefix);

        var body = Body(id, prefix);
        body.Length.ShouldBe(26);
        body.ShouldAllBe(c => Crockford.Contains(c));
        id.Length.ShouldBe(prefix.Length + 27);
    }

    [Fact]
    public void An_id_encodes_its_creation_millisecond()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 14, 15, 9, 26, 535, TimeSpan.Zero));
        var ids = new IdGenerator(time);

        var body = Body(ids.New("exe"), "exe");

        TimestampOf(body).ShouldBe(time.GetUtcNow().ToUnixTimeMilliseconds());
        body[0].ShouldBeLessThanOrEqualTo('7', "128 bits in 130: the first character holds only three bits");
    }

    [Fact]
    public void Ids_sort_by_creation_time()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var ids = new IdGenerator(time);
        var created = new List<string>();
        var steps = new[] { 1, 1, 5, 1000, 1, 60_000, 3_600_000, 1, 86_400_000 };

        created.Add(ids.New("exe"));
        foreach (var step in steps)
        {
            time.Advance(TimeSpan.FromMilliseconds(step));
            created.Add(ids.New("exe"));
        }

        created.Order(StringComparer.Ordinal).ShouldBe(created);
        created.Distinct().Count().ShouldBe(created.Count);
    }

    [Fact]
    public void An_id_made_a_millisecond_later_sorts_after_any_id_of_the_millisecond_before()
    {
        // Random bits cannot outweigh the timestamp: try many pairs across a millisecond boundary.
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        for (var i = 0; i < 200; i++)
        {
            var ids = new IdGenerator(time);
            var earlier = ids.New("exe");
            time.Advance(TimeSpan.FromMilliseconds(1));
            var later = new IdGenerator(time).New("exe");

            string.CompareOrdinal(earlier, later).ShouldBeLessThan(0, $"{earlier} < {later}");
        }
    }

    [Fact]
    public void Ids_are_strictly_increasing_within_one_millisecond()
    {
        var ids = new IdGenerator(new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero)));
        var previous = ids.New("exe");

        for (var i = 0; i < 10_000; i++)
        {
            var next = ids.New("exe");
            string.CompareOrdinal(previous, next).ShouldBeLessThan(0, $"#{i}: {previous} then {next}");
            previous = next;
        }
    }

    [Fact]
    public void Ids_keep_increasing_when_the_clock_steps_backwards()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var ids = new IdGenerator(time);
        var first = ids.New("exe");

        time.AdjustTime(time.GetUtcNow() - TimeSpan.FromSeconds(5)); // a clock adjustment: back, without firing timers
        var second = ids.New("exe");
        var third = ids.New("exe");

        string.CompareOrdinal(first, second).ShouldBeLessThan(0);
        string.CompareOrdinal(second, third).ShouldBeLessThan(0);
    }

    [Fact]
    public async Task Ids_made_in_parallel_are_unique_and_each_caller_sees_them_increase()
    {
        var ids = new IdGenerator(TimeProvider.System);
        var all = new ConcurrentBag<string>();
        const int Workers = 8;
        const int PerWorker = 5_000;

        var workers = Enumerable.Range(0, Workers).Select(_ => Task.Run(() =>
        {
            var mine = new List<string>(PerWorker);
            for (var i = 0; i < PerWorker; i++)
            {
                mine.Add(ids.New("exe"));
            }

            return mine;
        })).ToList();
        var results = await Task.WhenAll(workers);

        foreach (var mine in results)
        {
            mine.Order(StringComparer.Ordinal).SequenceEqual(mine).ShouldBeTrue("one caller's ids come out in order");
            foreach (var id in mine)
            {
                all.Add(id);
            }
        }

        all.Count.ShouldBe(Workers * PerWorker);
        all.Distinct(StringComparer.Ordinal).Count().ShouldBe(Workers * PerWorker);
    }

    [Fact]
    public void Two_generators_in_the_same_millisecond_do_not_collide()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var a = new IdGenerator(time);
        var b = new IdGenerator(time);

        var fromA = Enumerable.Range(0, 1_000).Select(_ => a.New("exe")).ToHashSet();
        var fromB = Enumerable.Range(0, 1_000).Select(_ => b.New("exe"));

        fromB.ShouldAllBe(id => !fromA.Contains(id));
    }

    [Fact]
    public void Each_new_millisecond_starts_from_fresh_random_bits()
    {
        // Far more ids than one fill of the random buffer: every millisecond's random part is new.
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var ids = new IdGenerator(time);
        var randomParts = new HashSet<string>(StringComparer.Ordinal);

        for (var i = 0; i < 200; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(1));
            randomParts.Add(Body(ids.New("evt"), "evt")[10..]);
        }

        randomParts.Count.ShouldBe(200);
    }
}
