using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using ModelRoute.Server.Webhooks;
using ModelRoute.Tests.Infrastructure;

namespace ModelRoute.Tests.Webhooks;

/// <summary>
/// A node that stops lets the deliveries it has in flight finish and record their attempt (within the host's shutdown
/// timeout) rather than drop them mid-send: the receiver, which has the event, does not get it a second time later.
/// </summary>
public sealed class WebhookShutdownTests() : GatewayAndReceiver(new Dictionary<string, string?>
    {
        ["ModelRoute:Webhooks:Timeout"] = "00:00:05",
    })
{
    [Fact]
    public async Task A_delivery_in_flight_when_the_worker_stops_completes_and_is_recorded_before_the_stop_returns()
    {
        using var account = await Gateway.CreateAccountAsync();
        Receiver.Answer = (_, _) => new ReceiverAnswer(200, Delay: TimeSpan.FromMilliseconds(800));
        var id = (await account.Client.SubmitTextAsync(extra: $",\"webhook_url\":\"{Receiver.Url()}\"")).Json.GetProperty("id").GetString()!;
        await account.Client.WaitForTerminalAsync(id);
        await Eventually.HoldsAsync(() => !Receiver.Received.IsEmpty, "the delivery reached the receiver");

        var worker = Gateway.Services.GetServices<IHostedService>().OfType<WebhookDeliveryWorker>().Single();
        await worker.StopAsync(CancellationToken.None);

        var list = (await account.Client.GetApiAsync($"/v1/executions/{id}/webhook-deliveries")).Json.GetProperty("data").EnumerateArray().ToList();
        var delivery = list.ShouldHaveSingleItem();
        delivery.GetProperty("status").GetString().ShouldBe("succeeded", "the send in flight was finished and its attempt written, not dropped");
        delivery.GetProperty("attempts").GetInt32().ShouldBe(1);
        Receiver.Received.Count.ShouldBe(1);
    }
}
