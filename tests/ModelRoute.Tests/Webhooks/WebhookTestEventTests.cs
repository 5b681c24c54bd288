using System.Security.Cryptography;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Tests.Webhooks;

/// <summary>docs/api.md#webhooks: POST /v1/webhook-endpoints/{id}/test sends a signed webhook.test event as a delivery.</summary>
public sealed class WebhookTestEventTests() : GatewayAndReceiver(FastRetries)
{
    private static readonly Dictionary<string, string?> FastRetries = new()
    {
        ["ModelRoute:Webhooks:RetrySchedule:0"] = "00:00:00",
        ["ModelRoute:Webhooks:RetrySchedule:1"] = "00:00:00.200",
        ["ModelRoute:Webhooks:Timeout"] = "00:00:02",
    };

    [Fact]
    public async Task A_test_event_reaches_the_endpoint_at_once_signed_with_its_secret_and_is_listed_with_its_deliveries()
    {
        using var account = await Gateway.CreateAccountAsync();
        var (endpointId, secret) = await CreateEndpointAsync(account, Receiver.Url("/tested"));

        var sent = await account.Client.PostJsonAsync($"/v1/webhook-endpoints/{endpointId}/test", "");

        sent.Status.ShouldBe(202, sent.Body);
        var deliveryId = sent.Json.GetProperty("id").GetString()!;
        sent.Header("Location").ShouldBe($"/v1/webhook-deliveries/{deliveryId}");
        sent.Json.GetProperty("event_type").GetString().ShouldBe("webhook.test");
        sent.Json.GetProperty("endpoint_id").GetString().ShouldBe(endpointId);
        sent.Json.GetProperty("execution_id").ValueKind.ShouldBe(JsonValueKind.Null);
        var eventId = sent.Json.GetProperty("event_id").GetString()!;

        await Eventually.HoldsAsync(() => !Receiver.Received.IsEmpty, "the receiver got the test event", 10);
        var received = Receiver.Received.ShouldHaveSingleItem();
        received.Path.ShouldBe("/tested");
        received.Id.ShouldBe(eventId);
        Verifies(secret, received).ShouldBeTrue("signed with the endpoint's secret");
        received.Json.GetProperty("type").GetString().ShouldBe("webhook.test");
        received.Json.GetProperty("id").GetString().ShouldBe(eventId);
        received.Json.GetProperty("data").GetProperty("id").GetString().ShouldBe(endpointId);
        received.Json.GetProperty("data").GetProperty("object").GetString().ShouldBe("webhook_endpoint");

        await Eventually.HoldsAsync(async () => (await account.Client.GetApiAsync($"/v1/webhook-deliveries/{deliveryId}")).Json.GetProperty("status").GetString() == "succeeded", "the delivery recorded as succeeded", 10);
        var listed = await account.Client.GetApiAsync($"/v1/webhook-endpoints/{endpointId}/deliveries");
        var delivery = listed.Json.GetProperty("data").EnumerateArray().ShouldHaveSingleItem();
        delivery.GetProperty("id").GetString().ShouldBe(deliveryId);
        delivery.GetProperty("attempts").GetInt32().ShouldBe(1);
        delivery.GetProperty("attempt_log")[0].GetProperty("status_code").GetInt32().ShouldBe(200);
    }

    [Fact]
    public async Task Another_accounts_endpoint_or_an_unknown_one_answers_404_and_nothing_is_sent()
    {
        using var owner = await Gateway.CreateAccountAsync();
        using var other = await Gateway.CreateAccountAsync();
        var (endpointId, _) = await CreateEndpointAsync(owner, Receiver.Url("/owned"));

        var foreign = await other.Client.PostJsonAsync($"/v1/webhook-endpoints/{endpointId}/test", "{}");
        var unknown = await owner.Client.PostJsonAsync("/v1/webhook-endpoints/we_nonexistent/test", "{}");

        foreign.Status.ShouldBe(404, foreign.Body);
        foreign.ProblemCode.ShouldBe("NOT_FOUND");
        unknown.Status.ShouldBe(404, unknown.Body);
        await Task.Delay(TimeSpan.FromSeconds(1));
        Receiver.Received.ShouldBeEmpty();
        (await owner.Client.GetApiAsync($"/v1/webhook-endpoints/{endpointId}/deliveries")).Json.GetProperty("data").GetArrayLength().ShouldBe(0);
        (await Gateway.CountRowsAsync("webhook_deliveries")).ShouldBe(0);
    }

    [Fact]
    public async Task A_test_answered_410_disables_the_endpoint_like_any_delivery_and_a_disabled_endpoint_answers_409()
    {
        using var account = await Gateway.CreateAccountAsync();
        var (endpointId, _) = await CreateEndpointAsync(account, Receiver.Url("/gone"));
        Receiver.Answer = (_, _) => new ReceiverAnswer(410);

        (await account.Client.PostJsonAsync($"/v1/webhook-endpoints/{endpointId}/test", "{}")).Status.ShouldBe(202);
        await Eventually.HoldsAsync(
            async () => (await account.Client.GetApiAsync($"/v1/webhook-endpoints/{endpointId}")).Json.GetProperty("status").GetString() == "disabled", "the endpoint disabled", 10);

        var refused = await account.Client.PostJsonAsync($"/v1/webhook-endpoints/{endpointId}/test", "{}");

        refused.Status.ShouldBe(409, refused.Body);
        refused.ProblemCode.ShouldBe("INVALID_STATE");
        Receiver.Received.Count.ShouldBe(1);
        (await account.Client.PostJsonAsync($"/v1/webhook-endpoints/{endpointId}/enable", "{}")).Status.ShouldBe(200);
        Receiver.Answer = (_, _) => ReceiverAnswer.Ok;
        (await account.Client.PostJsonAsync($"/v1/webhook-endpoints/{endpointId}/test", "{}")).Status.ShouldBe(202, "enabled again, it takes tests again");
        await Eventually.HoldsAsync(() => Receiver.Received.Count == 2, "the second test arrived", 10);
    }

    private static async Task<(string Id, string Secret)> CreateEndpointAsync(TestAccount account, string url)
    {
        var created = await account.Client.PostJsonAsync("/v1/webhook-endpoints", $$"""{"url":"{{url}}","events":["execution.completed"]}""");
        created.Status.ShouldBe(201, created.Body);
        return (created.Json.GetProperty("id").GetString()!, created.Json.GetProperty("secret").GetString()!);
    }

    private static bool Verifies(string secret, ReceivedWebhook webhook)
    {
        var expected = Encoding.ASCII.GetBytes(WebhookSigner.Sign(secret, webhook.Id, webhook.Timestamp, webhook.Body));
        return webhook.Signature.Split(' ').Any(s => CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(s), expected));
    }
}
