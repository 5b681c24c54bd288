namespace ModelRoute.Tests.Webhooks;

// DisableAfter is five days in production; one second here, with attempts every 300 ms.
public sealed class EndpointHealthTests() : GatewayAndReceiver(new Dictionary<string, string?>
    {
        ["ModelRoute:Webhooks:DisableAfter"] = "00:00:01",
        ["ModelRoute:Webhooks:RetrySchedule:0"] = "00:00:00",
        ["ModelRoute:Webhooks:RetrySchedule:1"] = "00:00:00.300",
        ["ModelRoute:Webhooks:RetrySchedule:2"] = "00:00:00.300",
        ["ModelRoute:Webhooks:RetrySchedule:3"] = "00:00:00.300",
        ["ModelRoute:Webhooks:RetrySchedule:4"] = "00:00:00.300",
        ["ModelRoute:Webhooks:RetrySchedule:5"] = "00:00:00.300",
        ["ModelRoute:Webhooks:RetrySchedule:6"] = "00:00:00.300",
        ["ModelRoute:Webhooks:RetrySchedule:7"] = "00:00:00.300",
    })
{
    [Fact]
    public async Task An_endpoint_that_fails_every_attempt_for_the_whole_period_is_disabled()
    {
        using var account = await Gateway.CreateAccountAsync();
        Receiver.Answer = (_, _) => new ReceiverAnswer(500);
        var endpoint = (await account.Client.PostJsonAsync("/v1/webhook-endpoints", $$"""{"url":"{{Receiver.Url()}}"}""")).Json.GetProperty("id").GetString()!;

        await account.Client.WaitForTerminalAsync((await account.Client.SubmitTextAsync()).Json.GetProperty("id").GetString()!);
        await Eventually.HoldsAsync(
            async () => (await account.Client.GetApiAsync($"/v1/webhook-endpoints/{endpoint}")).Json.GetProperty("status").GetString() == "disabled",
            "the endpoint was disabled");

        var view = (await account.Client.GetApiAsync($"/v1/webhook-endpoints/{endpoint}")).Json;
        view.GetProperty("disabled_reason").GetString()!.ShouldContain("failed for");
        var attempts = Receiver.Received.Count;
        attempts.ShouldBeGreaterThan(1);
        attempts.ShouldBeLessThan(8, "disabled before the schedule ran out");
        await Task.Delay(800);
        Receiver.Received.Count.ShouldBe(attempts, "nothing is sent to a disabled endpoint");
    }

    [Fact]
    public async Task One_success_resets_the_failing_period()
    {
        using var account = await Gateway.CreateAccountAsync();
        // Fail, fail, succeed, then fail, fail: never failing for a whole second in a row.
        Receiver.Answer = (n, _) => n % 3 == 2 ? ReceiverAnswer.Ok : new ReceiverAnswer(500);
        var endpoint = (await account.Client.PostJsonAsync("/v1/webhook-endpoints", $$"""{"url":"{{Receiver.Url()}}"}""")).Json.GetProperty("id").GetString()!;

        for (var i = 0; i < 3; i++)
        {
            await account.Client.WaitForTerminalAsync((await account.Client.SubmitTextAsync()).Json.GetProperty("id").GetString()!);
            await Eventually.HoldsAsync(() => Receiver.Received.Count >= 3 * (i + 1), "that event's three attempts");
        }

        (await account.Client.GetApiAsync($"/v1/webhook-endpoints/{endpoint}")).Json.GetProperty("status").GetString().ShouldBe("enabled");
    }
}
