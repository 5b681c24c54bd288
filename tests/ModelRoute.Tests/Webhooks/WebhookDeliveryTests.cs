using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Tests.Webhooks;

public sealed class WebhookDeliveryTests() : GatewayAndReceiver(new Dictionary<string, string?>
    {
        ["ModelRoute:Webhooks:RetrySchedule:0"] = "00:00:00",
        ["ModelRoute:Webhooks:RetrySchedule:1"] = "00:00:00.200",
        ["ModelRoute:Webhooks:RetrySchedule:2"] = "00:00:00.200",
        ["ModelRoute:Webhooks:RetrySchedule:3"] = "00:00:00.200",
        ["ModelRoute:Webhooks:RetrySchedule:4"] = "00:00:00.200",
        ["ModelRoute:Webhooks:Timeout"] = "00:00:01",
    })
{
    [Fact]
    public async Task A_submissions_webhook_url_receives_the_completed_event_signed_with_the_accounts_default_secret()
    {
        using var account = await Gateway.CreateAccountAsync();
        var secret = (await account.Client.GetApiAsync("/v1/webhooks/default-secret")).Json.GetProperty("secret").GetString()!;
        secret.ShouldStartWith("whsec_");

        var id = (await account.Client.SubmitTextAsync(extra: $",\"webhook_url\":\"{Receiver.Url()}\"")).Json.GetProperty("id").GetString()!;
        var execution = await account.Client.WaitForTerminalAsync(id);
        await Eventually.HoldsAsync(() => !Receiver.Received.IsEmpty, "the webhook arrived");

        var webhook = Receiver.Received.Single();
        webhook.Headers["content-type"].ShouldStartWith("application/json");
        webhook.Id.ShouldStartWith("evt_");
        webhook.Signature.ShouldBe(WebhookSigner.Sign(secret, webhook.Id, webhook.Timestamp, webhook.Body));
        var body = webhook.Json;
        body.GetProperty("id").GetString().ShouldBe(webhook.Id);
        body.GetProperty("type").GetString().ShouldBe("execution.completed");
        body.GetProperty("data").GetProperty("id").GetString().ShouldBe(id);
        body.GetProperty("data").GetProperty("status").GetString().ShouldBe("COMPLETED");
        body.GetProperty("data").GetProperty("output").GetRawText().ShouldBe(execution.GetProperty("output").GetRawText());
    }

    [Fact]
    public async Task Webhook_events_on_a_submission_choose_which_events_are_sent()
    {
        using var account = await Gateway.CreateAccountAsync();

        var id = (await account.Client.SubmitTextAsync(extra: $",\"webhook_url\":\"{Receiver.Url()}\",\"webhook_events\":[\"execution.processing\",\"execution.completed\"]"))
            .Json.GetProperty("id").GetString()!;
        await account.Client.WaitForTerminalAsync(id);
        await Eventually.HoldsAsync(() => Receiver.Received.Count == 2, "two webhooks arrived");

        Receiver.Received.Select(w => w.Json.GetProperty("type").GetString()).Order().ShouldBe(["execution.completed", "execution.processing"]);
        Receiver.Received.Select(w => w.Id).Distinct().Count().ShouldBe(2, "each event has its own webhook-id");
    }

    [Fact]
    public async Task Registered_endpoints_receive_only_the_event_types_they_subscribe_to_and_thin_ones_only_id_and_status()
    {
        using var account = await Gateway.CreateAccountAsync();
        var failedOnly = await account.Client.PostJsonAsync("/v1/webhook-endpoints", $$"""{"url":"{{Receiver.Url("/failed")}}","events":["execution.failed"]}""");
        failedOnly.Status.ShouldBe(201, failedOnly.Body);
        failedOnly.Json.GetProperty("secret").GetString().ShouldStartWith("whsec_");
        var thin = await account.Client.PostJsonAsync("/v1/webhook-endpoints", $$"""{"url":"{{Receiver.Url("/thin")}}","thin":true}""");
        thin.Status.ShouldBe(201, thin.Body);

        var ok = (await account.Client.SubmitTextAsync()).Json.GetProperty("id").GetString()!;
        var bad = (await account.Client.SubmitTextAsync(simulate: """{"fail":"content_policy"}""")).Json.GetProperty("id").GetString()!;
        await account.Client.WaitForTerminalAsync(ok);
        await account.Client.WaitForTerminalAsync(bad);
        await Eventually.HoldsAsync(() => Receiver.Received.Count == 3, "three webhooks arrived");

        var failed = Receiver.Received.Where(w => w.Path == "/failed").ToList();
        failed.Count.ShouldBe(1);
        failed[0].Json.GetProperty("data").GetProperty("id").GetString().ShouldBe(bad);
        failed[0].Json.GetProperty("data").GetProperty("error").GetProperty("code").GetString().ShouldBe("CONTENT_POLICY_VIOLATION");
        var thinOnes = Receiver.Received.Where(w => w.Path == "/thin").ToList();
        thinOnes.Select(w => w.Json.GetProperty("data").GetProperty("id").GetString()).Order().ShouldBe(new[] { ok, bad }.Order());
        foreach (var w in thinOnes)
        {
            w.Json.GetProperty("data").EnumerateObject().Select(p => p.Name).ShouldBe(["id", "object", "status"], ignoreOrder: true);
        }

        // Other accounts' endpoints hear nothing of this account.
        using var other = await Gateway.CreateAccountAsync();
        (await other.Client.GetApiAsync("/v1/webhook-endpoints")).Json.GetProperty("data").GetArrayLength().ShouldBe(0);
    }

    [Theory]
    [InlineData(500)]
    [InlineData(302)]
    [InlineData(429)]
    public async Task AReceiver_that_fails_first_gets_the_event_later_with_the_same_webhook_id(int failure)
    {
        using var account = await Gateway.CreateAccountAsync();
        Receiver.Answer = (n, _) => n < 2
            ? new ReceiverAnswer(failure, Headers: failure == 302 ? new Dictionary<string, string> { ["Location"] = Receiver.Url("/elsewhere") } : null)
            : ReceiverAnswer.Ok;

        var id = (await account.Client.SubmitTextAsync(extra: $",\"webhook_url\":\"{Receiver.Url()}\"")).Json.GetProperty("id").GetString()!;
        await account.Client.WaitForTerminalAsync(id);
        await Eventually.HoldsAsync(() => Receiver.Received.Count == 3, "three attempts arrived");

        Receiver.Received.Select(w => w.Id).Distinct().Count().ShouldBe(1, "webhook-id is stable across retries");
        Receiver.Received.ShouldAllBe(w => w.Path == "/hook", "redirects are not followed");
        var delivery = await SingleDeliveryAsync(account, id, d => d.GetProperty("status").GetString() == "succeeded");
        delivery.GetProperty("attempts").GetInt32().ShouldBe(3);
        var log = delivery.GetProperty("attempt_log").EnumerateArray().ToList();
        log.Select(a => a.GetProperty("status_code").GetInt32()).ShouldBe([failure, failure, 200]);
        log[0].GetProperty("error").GetString().ShouldNotBeNullOrEmpty();
        log[2].GetProperty("error").ValueKind.ShouldBe(JsonValueKind.Null);
        log.ShouldAllBe(a => a.GetProperty("latency_ms").GetInt64() >= 0);
    }

    [Fact]
    public async Task AReceiver_that_times_out_gets_the_event_on_a_later_attempt()
    {
        using var account = await Gateway.CreateAccountAsync();
        Receiver.Answer = (n, _) => n == 0 ? new ReceiverAnswer(200, Delay: TimeSpan.FromSeconds(3)) : ReceiverAnswer.Ok;

        var id = (await account.Client.SubmitTextAsync(extra: $",\"webhook_url\":\"{Receiver.Url()}\"")).Json.GetProperty("id").GetString()!;
        await account.Client.WaitForTerminalAsync(id);

        var delivery = await SingleDeliveryAsync(account, id, d => d.GetProperty("status").GetString() == "succeeded");
        var log = delivery.GetProperty("attempt_log").EnumerateArray().ToList();
        log.Count.ShouldBe(2);
        log[0].GetProperty("status_code").ValueKind.ShouldBe(JsonValueKind.Null);
        log[0].GetProperty("error").GetString()!.ShouldContain("No answer");
    }

    [Fact]
    public async Task AReceiver_that_is_down_gets_the_event_once_it_is_up()
    {
        using var account = await Gateway.CreateAccountAsync();
        var port = GatewayProcess.FreePort(); // nothing listens there yet: connection refused

        var id = (await account.Client.SubmitTextAsync(extra: $",\"webhook_url\":\"http://127.0.0.1:{port}/late\"")).Json.GetProperty("id").GetString()!;
        await account.Client.WaitForTerminalAsync(id);
        await SingleDeliveryAsync(account, id, d => d.GetProperty("attempts").GetInt32() >= 1);

        var receiver = WebApplication.CreateSlimBuilder();
        receiver.WebHost.UseUrls($"http://127.0.0.1:{port}");
        await using var app = receiver.Build();
        var got = new System.Collections.Concurrent.ConcurrentQueue<string>();
        app.Run(async context => got.Enqueue(await new StreamReader(context.Request.Body).ReadToEndAsync()));
        await app.StartAsync();

        var delivery = await SingleDeliveryAsync(account, id, d => d.GetProperty("status").GetString() == "succeeded");
        delivery.GetProperty("attempt_log")[0].GetProperty("error").GetString()!.ShouldContain("connect", Case.Insensitive);
        got.Count.ShouldBe(1);
        await app.StopAsync();
    }

    [Fact]
    public async Task Retry_after_from_theReceiver_is_honoured()
    {
        using var account = await Gateway.CreateAccountAsync();
        Receiver.Answer = (n, _) => n == 0 ? new ReceiverAnswer(503, Headers: new Dictionary<string, string> { ["Retry-After"] = "2" }) : ReceiverAnswer.Ok;

        var id = (await account.Client.SubmitTextAsync(extra: $",\"webhook_url\":\"{Receiver.Url()}\"")).Json.GetProperty("id").GetString()!;
        await account.Client.WaitForTerminalAsync(id);
        await Eventually.HoldsAsync(() => Receiver.Received.Count == 2, "the retry arrived");

        var times = Receiver.Received.Select(w => w.ReceivedAt).ToList();
        (times[1] - times[0]).ShouldBeGreaterThanOrEqualTo(TimeSpan.FromSeconds(1.9)); // the schedule alone says 0.2 s
    }

    [Fact]
    public async Task After_the_last_scheduled_attempt_the_delivery_is_failed_and_can_be_redelivered()
    {
        using var account = await Gateway.CreateAccountAsync();
        Receiver.Answer = (_, _) => new ReceiverAnswer(500);

        var id = (await account.Client.SubmitTextAsync(extra: $",\"webhook_url\":\"{Receiver.Url()}\"")).Json.GetProperty("id").GetString()!;
        await account.Client.WaitForTerminalAsync(id);
        var failed = await SingleDeliveryAsync(account, id, d => d.GetProperty("status").GetString() == "failed");
        failed.GetProperty("attempts").GetInt32().ShouldBe(5, "one attempt per entry of the schedule");
        Receiver.Received.Count.ShouldBe(5);

        Receiver.Answer = (_, _) => ReceiverAnswer.Ok;
        var redelivered = await account.Client.PostJsonAsync($"/v1/webhook-deliveries/{failed.GetProperty("id").GetString()}/redeliver", "{}");

        redelivered.Status.ShouldBe(202, redelivered.Body);
        redelivered.Json.GetProperty("event_id").GetString().ShouldBe(failed.GetProperty("event_id").GetString());
        await Eventually.HoldsAsync(() => Receiver.Received.Count == 6, "the redelivery arrived");
        Receiver.Received.Select(w => w.Id).Distinct().Count().ShouldBe(1);
        Receiver.Received.Select(w => w.Body).Distinct().Count().ShouldBe(1, "the same body every time");
    }

    [Fact]
    public async Task A_410_gone_disables_the_endpoint_and_it_receives_nothing_more()
    {
        using var account = await Gateway.CreateAccountAsync();
        Receiver.Answer = (_, _) => new ReceiverAnswer(410);
        var endpoint = (await account.Client.PostJsonAsync("/v1/webhook-endpoints", $$"""{"url":"{{Receiver.Url()}}"}""")).Json.GetProperty("id").GetString()!;

        await account.Client.WaitForTerminalAsync((await account.Client.SubmitTextAsync()).Json.GetProperty("id").GetString()!);
        await Eventually.HoldsAsync(
            async () => (await account.Client.GetApiAsync($"/v1/webhook-endpoints/{endpoint}")).Json.GetProperty("status").GetString() == "disabled",
            "the endpoint is disabled");
        await account.Client.WaitForTerminalAsync((await account.Client.SubmitTextAsync()).Json.GetProperty("id").GetString()!);
        await Task.Delay(500);

        Receiver.Received.Count.ShouldBe(1, "one attempt, no retry after 410, nothing after disabling");
        var deliveries = (await account.Client.GetApiAsync($"/v1/webhook-endpoints/{endpoint}/deliveries")).Json.GetProperty("data").EnumerateArray().ToList();
        deliveries.Count.ShouldBe(1);
        deliveries[0].GetProperty("status").GetString().ShouldBe("failed");
    }

    [Fact]
    public async Task Another_accounts_deliveries_and_endpoints_are_not_found()
    {
        using var owner = await Gateway.CreateAccountAsync();
        using var stranger = await Gateway.CreateAccountAsync();
        var endpoint = (await owner.Client.PostJsonAsync("/v1/webhook-endpoints", $$"""{"url":"{{Receiver.Url()}}"}""")).Json.GetProperty("id").GetString()!;
        var id = (await owner.Client.SubmitTextAsync()).Json.GetProperty("id").GetString()!;
        await owner.Client.WaitForTerminalAsync(id);
        var delivery = await SingleDeliveryAsync(owner, id, _ => true);

        (await stranger.Client.GetApiAsync($"/v1/webhook-endpoints/{endpoint}")).Status.ShouldBe(404);
        (await stranger.Client.GetApiAsync($"/v1/webhook-endpoints/{endpoint}/deliveries")).Status.ShouldBe(404);
        (await stranger.Client.GetApiAsync($"/v1/executions/{id}/webhook-deliveries")).Status.ShouldBe(404);
        (await stranger.Client.PostJsonAsync($"/v1/webhook-deliveries/{delivery.GetProperty("id").GetString()}/redeliver", "{}")).Status.ShouldBe(404);
        (await stranger.Client.SendJsonAsync(HttpMethod.Delete, $"/v1/webhook-endpoints/{endpoint}", null)).Status.ShouldBe(404);
        (await owner.Client.SendJsonAsync(HttpMethod.Delete, $"/v1/webhook-endpoints/{endpoint}", null)).Status.ShouldBe(200);
        (await owner.Client.GetApiAsync($"/v1/webhook-endpoints/{endpoint}")).Status.ShouldBe(404);
    }

    [Theory]
    [InlineData("""{"url":"not a url"}""", "url")]
    [InlineData("""{"url":"ftp://x.test/"}""", "url")]
    [InlineData("""{"url":"http://x.test/","events":["execution.exploded"]}""", "events")]
    [InlineData("""{"url":"http://x.test/","events":[]}""", "events")]
    [InlineData("""{"url":"http://x.test/","thin":"yes"}""", "thin")]
    [InlineData("""{"url":"http://x.test/","secret":"whsec_mine"}""", "secret")]
    public async Task Registering_an_endpoint_with_bad_fields_is_a_400_naming_the_field(string body, string field)
    {
        using var account = await Gateway.CreateAccountAsync();

        var response = await account.Client.PostJsonAsync("/v1/webhook-endpoints", body);

        response.Status.ShouldBe(400, response.Body);
        response.ProblemCode.ShouldBe("VALIDATION_ERROR");
        response.Json.GetProperty("field").GetString().ShouldBe(field);
        (await account.Client.GetApiAsync("/v1/webhook-endpoints")).Json.GetProperty("data").GetArrayLength().ShouldBe(0);
    }

    [Fact]
    public async Task A_delivery_in_flight_when_the_worker_stops_completes_and_is_recorded_before_the_stop_returns()
    {
        // A node that stops lets its sends in flight finish and record their attempt (within the host's shutdown
        // timeout) rather than drop them mid-send: the receiver, which has the event, does not get it again later.
        using var account = await Gateway.CreateAccountAsync();
        Receiver.Answer = (_, _) => new ReceiverAnswer(200, Delay: TimeSpan.FromMilliseconds(500));
        var id = (await account.Client.SubmitTextAsync(extra: $",\"webhook_url\":\"{Receiver.Url()}\"")).Json.GetProperty("id").GetString()!;
        await account.Client.WaitForTerminalAsync(id);
        await Eventually.HoldsAsync(() => !Receiver.Received.IsEmpty, "the delivery reached the receiver");

        await Gateway.Services.GetServices<IHostedService>().OfType<WebhookDeliveryWorker>().Single().StopAsync(CancellationToken.None);

        var list = (await account.Client.GetApiAsync($"/v1/executions/{id}/webhook-deliveries")).Json.GetProperty("data").EnumerateArray().ToList();
        var delivery = list.ShouldHaveSingleItem();
        delivery.GetProperty("status").GetString().ShouldBe("succeeded", "the send in flight was finished and its attempt written, not dropped");
        delivery.GetProperty("attempts").GetInt32().ShouldBe(1);
        Receiver.Received.Count.ShouldBe(1);
    }

    private static async Task<JsonElement> SingleDeliveryAsync(TestAccount account, string executionId, Func<JsonElement, bool> until)
    {
        JsonElement found = default;
        await Eventually.HoldsAsync(
            async () =>
            {
                var list = (await account.Client.GetApiAsync($"/v1/executions/{executionId}/webhook-deliveries")).Json.GetProperty("data").EnumerateArray().ToList();
                if (list.Count == 1 && until(list[0]))
                {
                    found = list[0];
                    return true;
                }

                return false;
            },
            $"the delivery of {executionId} reached the expected state");
        return found;
    }
}

public sealed class WebhookEndpointLifecycleTests() : GatewayAndReceiver(new Dictionary<string, string?>
    {
        ["ModelRoute:Webhooks:RetrySchedule:0"] = "00:00:00",
        ["ModelRoute:Webhooks:RetrySchedule:1"] = "00:01:00", // a retry that would wait a minute
        ["ModelRoute:Webhooks:Timeout"] = "00:00:01",
    })
{
    [Fact]
    public async Task Deleting_an_endpoint_fails_its_pending_deliveries_at_once_and_a_delivery_can_be_read_by_id()
    {
        using var account = await Gateway.CreateAccountAsync();
        Receiver.Answer = (_, _) => new ReceiverAnswer(500);
        var endpoint = (await account.Client.PostJsonAsync("/v1/webhook-endpoints", $$"""{"url":"{{Receiver.Url()}}"}""")).Json.GetProperty("id").GetString()!;
        var id = (await account.Client.SubmitTextAsync()).Json.GetProperty("id").GetString()!;
        await account.Client.WaitForTerminalAsync(id);
        await Eventually.HoldsAsync(() => Receiver.Received.Count == 1, "the first attempt");
        var deliveryId = (await account.Client.GetApiAsync($"/v1/executions/{id}/webhook-deliveries")).Json.GetProperty("data")[0].GetProperty("id").GetString()!;
        await Eventually.HoldsAsync(
            async () => (await account.Client.GetApiAsync($"/v1/webhook-deliveries/{deliveryId}")).Json.GetProperty("attempts").GetInt32() == 1,
            "the first attempt is recorded");

        (await account.Client.SendJsonAsync(HttpMethod.Delete, $"/v1/webhook-endpoints/{endpoint}", null)).Status.ShouldBe(200);

        var delivery = await account.Client.GetApiAsync($"/v1/webhook-deliveries/{deliveryId}");
        delivery.Status.ShouldBe(200);
        delivery.Json.GetProperty("status").GetString().ShouldBe("failed");
        delivery.Json.GetProperty("last_error").GetString()!.ShouldContain("deleted");
        delivery.Json.GetProperty("attempt_log").GetArrayLength().ShouldBe(1);
        (await account.Client.GetApiAsync("/v1/webhook-deliveries/whd_00000000000000000000000000")).Status.ShouldBe(404);
    }

    [Fact]
    public async Task A_disabled_endpoint_can_be_enabled_again_and_then_receives_events()
    {
        using var account = await Gateway.CreateAccountAsync();
        Receiver.Answer = (n, _) => n == 0 ? new ReceiverAnswer(410) : ReceiverAnswer.Ok;
        var endpoint = (await account.Client.PostJsonAsync("/v1/webhook-endpoints", $$"""{"url":"{{Receiver.Url()}}"}""")).Json.GetProperty("id").GetString()!;
        await account.Client.WaitForTerminalAsync((await account.Client.SubmitTextAsync()).Json.GetProperty("id").GetString()!);
        await Eventually.HoldsAsync(
            async () => (await account.Client.GetApiAsync($"/v1/webhook-endpoints/{endpoint}")).Json.GetProperty("status").GetString() == "disabled",
            "the 410 disabled the endpoint");

        var enabled = await account.Client.PostJsonAsync($"/v1/webhook-endpoints/{endpoint}/enable", "{}");

        enabled.Status.ShouldBe(200, enabled.Body);
        enabled.Json.GetProperty("status").GetString().ShouldBe("enabled");
        enabled.Json.GetProperty("disabled_reason").ValueKind.ShouldBe(System.Text.Json.JsonValueKind.Null);
        await account.Client.WaitForTerminalAsync((await account.Client.SubmitTextAsync()).Json.GetProperty("id").GetString()!);
        await Eventually.HoldsAsync(() => Receiver.Received.Count == 2, "the next event arrived");
    }
}
