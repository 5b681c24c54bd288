namespace ModelRoute.Tests.Webhooks;

/// <summary>
/// A delivery written by this node's own commit goes straight to its worker (on both stores), or the
/// worker is woken to claim it (when the hand-off queue is full); either way it never waits for the
/// idle poll, which this gateway sets to ten minutes so that only those paths can deliver in time.
/// </summary>
public sealed class WebhookHandoffTests() : GatewayAndReceiver(new Dictionary<string, string?>
    {
        ["ModelRoute:Dispatch:PollInterval"] = "00:10:00",
    })
{
    [Fact]
    public async Task Every_event_of_a_burst_is_delivered_once_without_waiting_for_the_idle_poll()
    {
        using var account = await Gateway.CreateAccountAsync();
        var ids = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            ids.Add((await account.Client.SubmitTextAsync(key: $"handoff-{i}", extra: $",\"webhook_url\":\"{Receiver.Url()}\"")).Json.GetProperty("id").GetString()!);
        }

        foreach (var id in ids)
        {
            await account.Client.WaitForTerminalAsync(id);
        }

        await Eventually.HoldsAsync(() => Receiver.Received.Count >= ids.Count, "every webhook arrived");
        Receiver.Received.Select(w => w.Json.GetProperty("data").GetProperty("id").GetString()).Order().ShouldBe(ids.Order());
    }
}
