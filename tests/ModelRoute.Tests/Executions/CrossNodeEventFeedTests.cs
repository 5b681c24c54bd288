using System.Diagnostics;

namespace ModelRoute.Tests.Executions;

/// <summary>
/// docs/api.md#the-account-event-feed: two nodes on one PostgreSQL database. A feed open on one node shows the changes
/// committed on the other, which it hears of by no in-process signal, within about a second of each.
/// </summary>
public sealed class CrossNodeEventFeedTests(Xunit.Abstractions.ITestOutputHelper output) : IAsyncLifetime
{
    private TwoPostgresNodes _nodes = null!;

    public async Task InitializeAsync() => _nodes = await TwoPostgresNodes.StartAsync("xfeed");

    public Task DisposeAsync() => _nodes.DisposeAsync().AsTask();

    [Fact]
    public async Task A_feed_on_one_node_shows_changes_made_on_the_other_within_seconds_and_only_its_own_accounts()
    {
        using var account = await _nodes.A.CreateAccountAsync();
        using var stranger = await _nodes.A.CreateAccountAsync();
        using var onB = _nodes.B.WithBearer(account.Key);
        await using var feed = await EventStream.OpenAsync(onB, "/v1/events");

        // Cancelled on node A, so that every change of it is committed there.
        var submitted = await account.Client.SubmitTextAsync(simulate: """{"latency_ms":60000}""", extra: ""","timeout_seconds":300""");
        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;
        var strangers = (await stranger.Client.SubmitTextAsync()).Json.GetProperty("id").GetString()!;
        await feed.WaitForAsync(e => e.Any(x => x.ExecutionId == id), "the submission made on node A", 10);

        var cancelled = await account.Client.PostJsonAsync($"/v1/executions/{id}/cancel", "{}");
        cancelled.Status.ShouldBe(202, cancelled.Body);
        var clock = Stopwatch.StartNew();
        await feed.WaitForAsync(e => e.Any(x => x.ExecutionId == id && x.Type == "execution.cancelled"), "the cancel made on node A", 10);
        output.WriteLine($"The cancel committed on node A reached the feed on node B after {clock.ElapsedMilliseconds} ms.");
        clock.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(3), "the feed re-reads every second");

        await stranger.Client.WaitForTerminalAsync(strangers);
        await Task.Delay(TimeSpan.FromSeconds(1.5)); // A re-read after it ended.
        feed.Events.ShouldAllBe(e => e.ExecutionId == id, "another account's executions never show");
        feed.Events.Select(e => e.Status).ShouldContain("CANCELLED");
    }
}
