using Microsoft.Extensions.Time.Testing;

namespace ModelRoute.Tests.Executions;

public sealed class SubmissionLoadTests
{
    [Fact]
    public void Counts_submissions_until_their_scope_ends()
    {
        var load = new SubmissionLoad();
        var scopes = Enumerable.Range(0, SubmissionLoad.Busy).Select(_ => load.Enter()).ToList();

        load.InFlight.ShouldBe(SubmissionLoad.Busy);
        load.IsBusy.ShouldBeTrue();

        scopes[0].Dispose();
        load.IsBusy.ShouldBeFalse();
        scopes.Skip(1).ToList().ForEach(s => s.Dispose());
        load.InFlight.ShouldBe(0);
    }

    [Fact]
    public async Task A_wait_for_calm_returns_at_once_when_few_submissions_are_in_flight()
    {
        var load = new SubmissionLoad();
        using var one = load.Enter();

        // A clock that never moves: only calm can end the wait.
        await load.WaitForCalmAsync(TimeSpan.FromHours(1), new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero)), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_wait_for_calm_ends_when_the_submissions_drain_below_half_of_busy()
    {
        var load = new SubmissionLoad();
        var scopes = Enumerable.Range(0, SubmissionLoad.Busy).Select(_ => load.Enter()).ToList();

        var wait = load.WaitForCalmAsync(TimeSpan.FromHours(1), new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero)), CancellationToken.None);
        for (var i = 0; i <= SubmissionLoad.Busy / 2; i++)
        {
            wait.IsCompleted.ShouldBeFalse($"still {load.InFlight} in flight");
            scopes[i].Dispose();
        }

        await wait.WaitAsync(TimeSpan.FromSeconds(5));
        load.InFlight.ShouldBe(SubmissionLoad.Busy / 2 - 1);
    }

    [Fact]
    public async Task A_wait_for_calm_gives_up_after_its_timeout()
    {
        var load = new SubmissionLoad();
        var scopes = Enumerable.Range(0, SubmissionLoad.Busy).Select(_ => load.Enter()).ToList();

        await load.WaitForCalmAsync(TimeSpan.FromMilliseconds(50), TimeProvider.System, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));

        load.IsBusy.ShouldBeTrue();
        scopes.ForEach(s => s.Dispose());
    }
}
