using Microsoft.Extensions.Time.Testing;
using ModelRoute.Server.Operations;

namespace ModelRoute.Tests.Executions;

/// <summary>How an idle dispatcher learns of work that comes due later.</summary>
public sealed class ExecutionChangesTests
{
    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(1);
    private static readonly DateTimeOffset Now = new(2026, 11, 21, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void An_idle_dispatcher_waits_a_poll_when_no_work_is_known_to_come_due()
    {
        new ExecutionChanges(new GatewayMetrics()).UntilNextLook(Poll, Now).ShouldBe(Poll);
    }

    [Fact]
    public void It_looks_again_when_the_earliest_known_work_comes_due()
    {
        var changes = new ExecutionChanges(new GatewayMetrics());
        changes.WorkDueAt(Now.AddMilliseconds(300));
        changes.WorkDueAt(Now.AddMilliseconds(100));
        changes.WorkDueAt(Now.AddMilliseconds(200));

        changes.UntilNextLook(Poll, Now).ShouldBe(TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public void Work_due_beyond_the_poll_waits_for_the_poll()
    {
        var changes = new ExecutionChanges(new GatewayMetrics());
        changes.WorkDueAt(Now.AddSeconds(5));

        changes.UntilNextLook(Poll, Now).ShouldBe(Poll);
        changes.UntilNextLook(Poll, Now.AddSeconds(4.5)).ShouldBe(TimeSpan.FromSeconds(0.5), "the hint is kept until it comes due");
    }

    [Fact]
    public void Work_due_by_the_look_was_seen_by_it_and_its_hint_is_used_up()
    {
        var changes = new ExecutionChanges(new GatewayMetrics());
        changes.WorkDueAt(Now.AddMilliseconds(100));

        changes.UntilNextLook(Poll, Now.AddMilliseconds(100)).ShouldBe(Poll);
        changes.UntilNextLook(Poll, Now.AddMilliseconds(100)).ShouldBe(Poll);
    }

    [Fact]
    public void A_later_due_time_is_kept_while_an_earlier_one_claimed_by_a_look_that_found_work_is_still_held()
    {
        // A retry's second backoff: the look at the first due time found the execution (so no wait was worked out and
        // that time stayed), its attempt failed again, and the second due time came while the first was still held.
        // It was dropped as the later of the two, and the retry waited for a whole poll.
        var changes = new ExecutionChanges(new GatewayMetrics());
        changes.WorkDueAt(Now.AddMilliseconds(100));
        changes.WorkDueAt(Now.AddMilliseconds(250));

        changes.UntilNextLook(Poll, Now.AddMilliseconds(120)).ShouldBe(TimeSpan.FromMilliseconds(130));
    }

    [Fact]
    public void Every_known_due_time_gets_a_look_not_only_the_earliest()
    {
        var changes = new ExecutionChanges(new GatewayMetrics());
        changes.WorkDueAt(Now.AddMilliseconds(100));
        changes.WorkDueAt(Now.AddMilliseconds(300));
        changes.WorkDueAt(Now.AddMilliseconds(200));

        changes.UntilNextLook(Poll, Now).ShouldBe(TimeSpan.FromMilliseconds(100));
        changes.UntilNextLook(Poll, Now.AddMilliseconds(100)).ShouldBe(TimeSpan.FromMilliseconds(100));
        changes.UntilNextLook(Poll, Now.AddMilliseconds(200)).ShouldBe(TimeSpan.FromMilliseconds(100));
        changes.UntilNextLook(Poll, Now.AddMilliseconds(300)).ShouldBe(Poll);
    }

    [Fact]
    public void A_pending_execution_published_with_a_later_attempt_is_looked_for_then()
    {
        var changes = new ExecutionChanges(new GatewayMetrics());
        var retry = new Execution
        {
            Id = "exe_1", AccountId = "acct_1", Model = "sim/text", Status = ExecutionStatus.Pending, IdempotencyKey = "k", RequestHash = "h",
            Input = "{}", EstimatedMicros = 1, HeldMicros = 1, Price = new ModelRoute.Server.Billing.Price(), TimeoutSeconds = 300, CreatedAt = Now, UpdatedAt = Now, ExpiresAt = Now.AddMinutes(5),
            NextAttemptAt = Now.AddMilliseconds(250),
        };

        changes.Published(retry);

        changes.UntilNextLook(Poll, Now).ShouldBe(TimeSpan.FromMilliseconds(250));
    }

    [Fact]
    public async Task Work_given_back_while_the_dispatcher_already_waits_for_a_whole_poll_wakes_it_to_wait_for_that_time_instead()
    {
        // The race behind a retry left for a minute: the claim loop looked (nothing due), found no hint and began to wait
        // a whole poll; only then was an execution given back with its own due time (the provider was full).
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var changes = new ExecutionChanges(new GatewayMetrics());
        var lookedAt = time.GetUtcNow();
        var poll = TimeSpan.FromMinutes(1);
        var waiting = changes.WaitForWorkAsync(changes.UntilNextLook(poll, lookedAt), time, CancellationToken.None);

        changes.WorkDueAt(lookedAt + TimeSpan.FromMilliseconds(50));

        (await Task.WhenAny(waiting, Task.Delay(TimeSpan.FromSeconds(10)))).ShouldBe(waiting, "the dispatcher is woken without the clock moving");
        var lookedAgainAt = time.GetUtcNow();
        changes.UntilNextLook(poll, lookedAgainAt).ShouldBe(TimeSpan.FromMilliseconds(50));
    }

    [Fact]
    public async Task A_due_time_later_than_one_already_known_does_not_wake_the_dispatcher()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var changes = new ExecutionChanges(new GatewayMetrics());
        var now = time.GetUtcNow();
        changes.WorkDueAt(now + TimeSpan.FromSeconds(30));
        await changes.WaitForWorkAsync(TimeSpan.FromMinutes(1), time, CancellationToken.None); // Takes that wake-up.
        using var stop = new CancellationTokenSource();
        var waiting = changes.WaitForWorkAsync(changes.UntilNextLook(TimeSpan.FromMinutes(1), now), time, stop.Token);

        changes.WorkDueAt(now + TimeSpan.FromSeconds(40));

        (await Task.WhenAny(waiting, Task.Delay(TimeSpan.FromMilliseconds(500)))).ShouldNotBe(waiting, "the wait already ends at the earlier time");
        changes.UntilNextLook(TimeSpan.FromMinutes(1), now).ShouldBe(TimeSpan.FromSeconds(30));
        await stop.CancelAsync();
        await Should.ThrowAsync<OperationCanceledException>(waiting);
    }
}
