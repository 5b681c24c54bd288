namespace ModelRoute.Tests.Executions;

/// <summary>docs/api.md#the-account-event-feed: GET /v1/events, on whichever store the run uses.</summary>
public sealed class EventFeedTests : IAsyncLifetime
{
    private static readonly string[] Lifecycle = ["execution.pending", "execution.processing", "execution.completed"];

    private readonly GatewayFactory _gateway = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task The_feed_streams_every_status_change_of_the_accounts_executions_as_it_happens()
    {
        using var account = await _gateway.CreateAccountAsync();
        await using var feed = await EventStream.OpenAsync(account.Client, "/v1/events");
        feed.Status.ShouldBe(200);
        feed.ContentType.ShouldBe("text/event-stream");

        var first = await SubmitAsync(account, """{"latency_ms":300}""");
        var second = await SubmitAsync(account, """{"latency_ms":100}""");
        await feed.WaitForAsync(e => Completed(e, first) && Completed(e, second), "both executions' completions");

        TypesOf(feed.Events, first).ShouldBe(Lifecycle);
        TypesOf(feed.Events, second).ShouldBe(Lifecycle);
        feed.Events.Select(e => e.Id).ShouldBe(feed.Events.Select(e => e.Id).Order().Distinct(), "ids are the events' increasing sequence numbers");
        var done = feed.Events.First(e => e.ExecutionId == first && e.Type == "execution.completed");
        done.Status.ShouldBe("COMPLETED");
        done.Json.GetProperty("id").GetString()!.ShouldStartWith("evt_");
        done.Json.GetProperty("data").GetProperty("object").GetString().ShouldBe("execution");
        feed.Comments.ShouldContain("retry: 1000");
    }

    [Fact]
    public async Task Without_a_starting_point_the_feed_begins_at_the_next_change_and_after_0_replays_every_kept_event()
    {
        using var account = await _gateway.CreateAccountAsync();
        var earlier = await SubmitAsync(account);
        await account.Client.WaitForTerminalAsync(earlier);

        await using var live = await EventStream.OpenAsync(account.Client, "/v1/events");
        var later = await SubmitAsync(account);
        await live.WaitForAsync(e => Completed(e, later), "the later execution's completion");
        live.Events.ShouldNotContain(e => e.ExecutionId == earlier, "what happened before the feed opened is not sent again");

        await using var replay = await EventStream.OpenAsync(account.Client, "/v1/events?after=0");
        await replay.WaitForAsync(e => Completed(e, earlier) && Completed(e, later), "every kept event");
        TypesOf(replay.Events, earlier).ShouldBe(Lifecycle);
        TypesOf(replay.Events, later).ShouldBe(Lifecycle);
    }

    [Fact]
    public async Task A_client_resuming_with_Last_Event_ID_gets_each_later_event_once_and_none_before_it()
    {
        using var account = await _gateway.CreateAccountAsync();
        var first = await SubmitAsync(account);
        var second = await SubmitAsync(account);
        await account.Client.WaitForTerminalAsync(first);
        await account.Client.WaitForTerminalAsync(second);
        await using var all = await EventStream.OpenAsync(account.Client, "/v1/events?after=0");
        await all.WaitForAsync(e => e.Count == 6, "six events");
        var seen = all.Events;

        // Last-Event-ID is what a reconnecting EventSource sends; it wins over the URL's after.
        await using var resumed = await EventStream.OpenAsync(account.Client, "/v1/events?after=0", lastEventId: seen[2].Id);
        await resumed.WaitForAsync(e => e.Count >= 3, "the three later events");
        await Task.Delay(TimeSpan.FromSeconds(2.5)); // Past a re-read of the trailing window: nothing is sent twice.

        resumed.Events.Select(e => e.Id).ShouldBe(seen.Skip(3).Select(e => e.Id));
    }

    [Fact]
    public async Task The_feed_shows_only_the_keys_own_account()
    {
        using var owner = await _gateway.CreateAccountAsync();
        using var other = await _gateway.CreateAccountAsync();
        await using var othersFeed = await EventStream.OpenAsync(other.Client, "/v1/events");

        var owners = await SubmitAsync(owner);
        var others = await SubmitAsync(other);
        await owner.Client.WaitForTerminalAsync(owners);
        await othersFeed.WaitForAsync(e => Completed(e, others), "the other account's own completion");
        await Task.Delay(TimeSpan.FromSeconds(1.5)); // A re-read, after the owner's execution ended.

        othersFeed.Events.ShouldAllBe(e => e.ExecutionId == others);
        await using var ownersReplay = await EventStream.OpenAsync(owner.Client, "/v1/events?after=0");
        await ownersReplay.WaitForAsync(e => Completed(e, owners), "the owner's completion");
        ownersReplay.Events.ShouldAllBe(e => e.ExecutionId == owners);
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("-1")]
    [InlineData("1.5")]
    [InlineData("99999999999999999999")]
    public async Task An_after_that_is_not_an_event_id_is_a_400_naming_after(string after)
    {
        using var account = await _gateway.CreateAccountAsync();

        var response = await account.Client.GetApiAsync($"/v1/events?after={Uri.EscapeDataString(after)}");

        response.Status.ShouldBe(400, response.Body);
        response.ProblemCode.ShouldBe("VALIDATION_ERROR");
        response.Json.GetProperty("field").GetString().ShouldBe("after");
    }

    [Fact]
    public async Task The_feed_needs_an_account_key()
    {
        using var anonymous = _gateway.Anonymous();
        (await anonymous.GetApiAsync("/v1/events")).Status.ShouldBe(401);
        using var admin = _gateway.Admin();
        (await admin.GetApiAsync("/v1/events")).Status.ShouldBe(403);
    }

    [Fact]
    public async Task The_feed_ends_after_its_lifetime_and_a_reconnect_with_Last_Event_ID_misses_nothing()
    {
        await using var gateway = new GatewayFactory(new Dictionary<string, string?> { ["ModelRoute:Limits:EventFeedLifetime"] = "00:00:02" });
        using var account = await gateway.CreateAccountAsync();
        await using var first = await EventStream.OpenAsync(account.Client, "/v1/events");
        var id = await SubmitAsync(account, """{"latency_ms":3500}""");

        await first.WaitForAsync(e => e.Any(x => x.ExecutionId == id), "the submission's event");
        (await Task.WhenAny(first.Ended, Task.Delay(TimeSpan.FromSeconds(15)))).ShouldBe(first.Ended, "the stream ends after its lifetime");
        Completed(first.Events, id).ShouldBeFalse("it ended before the execution did");

        await using var second = await EventStream.OpenAsync(account.Client, "/v1/events", lastEventId: first.Events[^1].Id);
        await second.WaitForAsync(e => Completed(e, id), "the completion, after reconnecting");
        TypesOf([.. first.Events, .. second.Events], id).ShouldBe(Lifecycle);
    }

    private static async Task<string> SubmitAsync(TestAccount account, string simulate = """{"latency_ms":50}""")
    {
        var submitted = await account.Client.SubmitTextAsync(simulate: simulate);
        submitted.Status.ShouldBe(202, submitted.Body);
        return submitted.Json.GetProperty("id").GetString()!;
    }

    private static bool Completed(IReadOnlyList<StreamedEvent> events, string executionId) =>
        events.Any(e => e.ExecutionId == executionId && e.Type == "execution.completed");

    private static List<string> TypesOf(IReadOnlyList<StreamedEvent> events, string executionId) =>
        [.. events.Where(e => e.ExecutionId == executionId).Select(e => e.Type)];
}
