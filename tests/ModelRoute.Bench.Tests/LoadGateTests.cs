using Microsoft.Extensions.Time.Testing;

namespace ModelRoute.Bench.Tests;

/// <summary>A store run waits for a quiet host, within a bound, and says what it waited for; on a fake clock, so no test sleeps.</summary>
public sealed class LoadGateTests
{
    private readonly FakeTimeProvider _time = new();

    private readonly List<string> _said = [];

    [Fact]
    public async Task A_run_starts_at_once_when_the_load_is_below_the_limit()
    {
        var record = await Gate([new(0.8, 1.1, 1.2)], 600).WaitAsync("run 1", CancellationToken.None);

        record.ShouldBe(new LoadRecord(0.8, 1.1, 1.2, 0, false, false));
        _said.ShouldBeEmpty();
    }

    [Fact]
    public async Task A_run_waits_while_the_load_is_above_the_limit_and_starts_when_it_falls()
    {
        var waiting = Gate([new(3, 2, 1), new(2, 2, 1), new(1.2, 1.9, 1)], 600).WaitAsync("run 1", CancellationToken.None);

        var record = await Advance(waiting);

        record.ShouldBe(new LoadRecord(1.2, 1.9, 1, 10, false, false));
        _said.Count.ShouldBe(2);
        _said[^1].ShouldContain("below 1.5 after waiting 10 s");
    }

    [Fact]
    public async Task A_run_gives_up_waiting_at_the_bound_and_records_that_it_started_above_the_limit()
    {
        var waiting = Gate([new(4, 3, 2)], 12).WaitAsync("run 2", CancellationToken.None);

        var record = await Advance(waiting);

        record.ShouldBe(new LoadRecord(4, 3, 2, 12, true, false));
        _said[^1].ShouldContain("after 12 s (the bound); starting anyway");
    }

    [Fact]
    public async Task With_no_wait_allowed_a_busy_host_does_not_delay_the_run()
    {
        var waiting = Gate([new(4, 3, 2)], 0).WaitAsync("run 1", CancellationToken.None);

        waiting.IsCompleted.ShouldBeTrue();
        var record = await waiting;
        record.WaitedSeconds.ShouldBe(0);
        record.BoundReached.ShouldBeTrue();
    }

    [Fact]
    public async Task An_unreadable_load_average_starts_the_run_and_says_so()
    {
        var waiting = new LoadGate(() => null, _time, 1.5, TimeSpan.FromSeconds(600), _said.Add).WaitAsync("run 1", CancellationToken.None);

        waiting.IsCompleted.ShouldBeTrue();
        var record = await waiting;
        record.Unreadable.ShouldBeTrue();
        double.IsNaN(record.One).ShouldBeTrue();
        _said.ShouldHaveSingleItem().ShouldContain("cannot be read");
    }

    [Theory]
    [InlineData("0.42 1.10 2.35 3/512 12345\n", 0.42, 1.10, 2.35)]
    [InlineData("4 5 6", 4, 5, 6)]
    public void The_load_average_is_read_from_the_first_three_fields_of_proc_loadavg(string text, double one, double five, double fifteen) =>
        LoadAverage.Parse(text).ShouldBe(new LoadAverage(one, five, fifteen));

    [Theory]
    [InlineData("")]
    [InlineData("0.42 x 1")]
    [InlineData(null)]
    public void Text_that_is_not_a_load_average_reads_as_none(string? text) => LoadAverage.Parse(text).ShouldBeNull();

    /// <summary>A gate whose reader returns these loads in turn (the last one from then on).</summary>
    private LoadGate Gate(LoadAverage[] loads, int waitSeconds)
    {
        var reads = 0;
        return new LoadGate(() => loads[Math.Min(reads++, loads.Length - 1)], _time, 1.5, TimeSpan.FromSeconds(waitSeconds), _said.Add);
    }

    /// <summary>
    /// Moves the fake clock a second at a time until the gate lets the run start (or far beyond any test's bound). On a
    /// thread-pool thread: there, without xunit's synchronization context, the gate's next poll runs inside the advance
    /// that ends its delay, so each advance sees the gate's latest state.
    /// </summary>
    private Task<LoadRecord> Advance(Task<LoadRecord> waiting) => Task.Run(async () =>
    {
        for (var seconds = 0; !waiting.IsCompleted && seconds < 1000; seconds++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
        }

        return await waiting;
    });
}
