namespace ModelRoute.Tests.Routing;

public sealed class ProviderConcurrencyTests : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new(new Dictionary<string, string?>
    {
        ["ModelRoute:Providers:sim:MaxConcurrency"] = "2",
    });

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task Dispatch_never_runs_more_calls_at_once_than_the_providers_limit()
    {
        using var account = await _gateway.CreateAccountAsync();
        var ids = new List<string>();
        for (var i = 0; i < 8; i++)
        {
            ids.Add((await account.Client.SubmitTextAsync(simulate: """{"latency_ms":300}""")).Json.GetProperty("id").GetString()!);
        }

        var intervals = new List<(DateTimeOffset Start, DateTimeOffset End)>();
        foreach (var id in ids)
        {
            var done = await account.Client.WaitForTerminalAsync(id);
            done.GetProperty("status").GetString().ShouldBe("COMPLETED");
            var attempt = done.GetProperty("attempt_log")[0];
            var start = attempt.GetProperty("started_at").GetDateTimeOffset();
            intervals.Add((start, start.AddMilliseconds(attempt.GetProperty("latency_ms").GetInt64())));
        }

        // At every call's start, count the calls running then (itself included): never above the limit.
        // The intervals are the gateway's own records, so this holds however slow the machine is.
        foreach (var (start, _) in intervals)
        {
            intervals.Count(other => other.Start <= start && start < other.End).ShouldBeLessThanOrEqualTo(2);
        }

        // And the limit was actually reached: with 8 calls of 300 ms, some ran side by side.
        intervals.Max(i => intervals.Count(o => o.Start <= i.Start && i.Start < o.End)).ShouldBe(2);
    }
}
