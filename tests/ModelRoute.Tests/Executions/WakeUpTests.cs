namespace ModelRoute.Tests.Executions;

/// <summary>
/// New work starts when it is written, not on a polling tick: with the idle workers' poll set to a minute, a fresh
/// submission is dispatched (handed to the dispatcher), completed and its webhook sent (handed to the delivery
/// worker) at once, a redelivery (which waits for a claim) wakes the worker, and a retry is claimed when its backoff
/// ends. The poll is far longer than any wait below: a step that waited for it would fail. Runs on both stores
/// (MODELROUTE_TEST_STORE).
/// </summary>
public sealed class WakeUpTests() : GatewayAndReceiver(new Dictionary<string, string?> { ["ModelRoute:Dispatch:PollInterval"] = "00:01:00" })
{
    private const int Seconds = 15;

    [Fact]
    public Task A_fresh_submission_is_dispatched_and_its_webhook_sent_and_redelivered_without_waiting_for_a_poll() => WithGatewayLogOnFailureAsync(async () =>
    {
        using var account = await Gateway.CreateAccountAsync();
        await Task.Delay(500); // The workers' first look for work is behind them: from here on they wait for a wake-up or the poll.

        for (var i = 1; i <= 3; i++)
        {
            var id = (await account.Client.SubmitTextAsync(extra: $",\"webhook_url\":\"{Receiver.Url()}\"")).Json.GetProperty("id").GetString()!;
            (await account.Client.WaitForTerminalAsync(id, Seconds)).GetProperty("status").GetString().ShouldBe("COMPLETED");
            await Eventually.HoldsAsync(() => Receiver.Received.Count == i, $"webhook {i} arrived", Seconds);
        }

        var executionId = Receiver.Received.Last().Json.GetProperty("data").GetProperty("id").GetString()!;
        var delivery = (await account.Client.GetApiAsync($"/v1/executions/{executionId}/webhook-deliveries")).Json.GetProperty("data")[0];
        var redelivered = await account.Client.PostJsonAsync($"/v1/webhook-deliveries/{delivery.GetProperty("id").GetString()}/redeliver", "{}");
        redelivered.Status.ShouldBe(202, redelivered.Body);
        await Eventually.HoldsAsync(() => Receiver.Received.Count == 4, "the redelivery arrived", Seconds);
    });

    [Fact]
    public Task A_retry_is_dispatched_when_its_backoff_ends_and_not_a_poll_later() => WithGatewayLogOnFailureAsync(async () =>
    {
        using var account = await Gateway.CreateAccountAsync();
        await Task.Delay(500);

        // Two retryable failures, each followed by a backoff of at most 100 ms (the test gateway's RetryMaxDelay).
        var id = (await account.Client.SubmitTextAsync(simulate: """{"fail":"server_error","fail_times":2,"latency_ms":0}""")).Json.GetProperty("id").GetString()!;

        var done = await account.Client.WaitForTerminalAsync(id, Seconds);
        done.GetProperty("status").GetString().ShouldBe("COMPLETED");
        done.GetProperty("attempts").GetInt32().ShouldBe(3);
    });
}
