namespace ModelRoute.Tests.Webhooks;

/// <summary>
/// docs/api.md#webhooks, last bullet, through the API: with private networks not allowed, a webhook URL that
/// points at loopback, private, link-local or metadata addresses is refused at submission
/// (422 WEBHOOK_URL_NOT_ALLOWED) and nothing is stored.
/// </summary>
public sealed class SsrfTests(SsrfTests.NoPrivateNetworksGateway fixture) : IClassFixture<SsrfTests.NoPrivateNetworksGateway>
{
    public static TheoryData<string> PrivateUrls =>
    [
        "http://127.0.0.1:1/x",
        "http://localhost/x",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[fd00::1]/",
        "http://0.0.0.0/",
        "https://192.168.1.1/hook",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",
        "http://[fd00:ec2::254]/latest/meta-data",
        // IPv4 carried inside IPv6: translated, NAT64, 6to4, Teredo (client inverted) and ISATAP.
        "https://[::ffff:0:127.0.0.1]/hook",
        "https://[::ffff:0:169.254.169.254]/latest/meta-data",
        "https://[64:ff9b::7f00:1]/hook",
        "https://[2002:a9fe:a9fe::1]/hook",
        "https://[2001:0:808:808::80ff:fffe]/hook",
        "https://[2606:4700::5efe:127.0.0.1]/hook",
    ];

    private GatewayFactory Gateway => fixture.Gateway;

    [Theory]
    [MemberData(nameof(PrivateUrls))]
    public async Task A_submission_whose_webhook_url_points_at_a_private_address_is_refused_and_nothing_is_stored(string url)
    {
        using var account = await Gateway.CreateAccountAsync("10.00");

        var response = await account.Client.SubmitTextAsync(extra: $$""","webhook_url":"{{url}}" """);

        response.Status.ShouldBe(422, response.Body);
        response.ProblemCode.ShouldBe("WEBHOOK_URL_NOT_ALLOWED");
        response.ProblemField().ShouldBe("webhook_url");
        (await account.Client.ExecutionsAsync()).ShouldBeEmpty();
        var (balance, held, available) = await account.Client.BalanceAsync();
        held.ShouldBe(0);
        balance.ShouldBe(10_000_000);
        available.ShouldBe(10_000_000);
        (await account.Client.LedgerAsync()).Select(e => e.GetProperty("kind").GetString()).ShouldBe(["credit"]);
    }

    [Theory]
    [MemberData(nameof(PrivateUrls))]
    public async Task A_webhook_endpoint_at_a_private_address_is_refused_and_not_stored(string url)
    {
        using var account = await Gateway.CreateAccountAsync();

        var response = await account.Client.PostJsonAsync("/v1/webhook-endpoints", $$"""{"url":"{{url}}","events":["execution.completed"]}""");

        response.Status.ShouldBe(422, response.Body);
        response.ProblemCode.ShouldBe("WEBHOOK_URL_NOT_ALLOWED");
        response.ProblemField().ShouldBe("url");
        var list = await account.Client.GetApiAsync("/v1/webhook-endpoints");
        list.Status.ShouldBe(200, list.Body);
        list.Json.GetProperty("data").GetArrayLength().ShouldBe(0);
    }

    [Fact]
    public async Task A_public_webhook_url_is_accepted_by_the_same_gateway()
    {
        // The control: the refusals above come from the addresses, not from a gateway that refuses everything.
        using var account = await Gateway.CreateAccountAsync();

        var submitted = await account.Client.SubmitTextAsync(
            simulate: """{"latency_ms":600000}""",
            extra: ""","webhook_url":"http://93.184.216.34/hook","webhook_events":["execution.completed"]""");
        var endpoint = await account.Client.PostJsonAsync("/v1/webhook-endpoints", """{"url":"https://93.184.216.34/hook","events":["execution.completed"]}""");

        submitted.Status.ShouldBe(202, submitted.Body);
        endpoint.Status.ShouldBe(201, endpoint.Body);
        (await account.Client.ExecutionsAsync()).Count.ShouldBe(1);
    }

    [Fact]
    public async Task Batch_items_with_a_private_webhook_url_are_refused_one_by_one()
    {
        using var account = await Gateway.CreateAccountAsync("10.00");

        var response = await account.Client.PostJsonAsync("/v1/executions/batch", $$"""
            {"executions":[
              {{Text("b-0", "http://127.0.0.1:1/x")}},
              {{Text("b-1", null)}},
              {{Text("b-2", "http://169.254.169.254/latest/meta-data")}},
              {{Text("b-3", "http://[::1]/")}}
            ]}
            """);

        response.Status.ShouldBe(200, response.Body);
        var items = response.Json.GetProperty("data").EnumerateArray().ToList();
        items.Select(i => i.GetProperty("status").GetInt32()).ShouldBe([422, 202, 422, 422]);
        foreach (var index in new[] { 0, 2, 3 })
        {
            var error = items[index].GetProperty("error");
            error.GetProperty("code").GetString().ShouldBe("WEBHOOK_URL_NOT_ALLOWED", items[index].ToString());
            error.GetProperty("field").GetString().ShouldBe($"executions[{index}].webhook_url");
            (items[index].TryGetProperty("execution", out var execution) && execution.ValueKind != JsonValueKind.Null).ShouldBeFalse(items[index].ToString());
        }

        var created = items[1].GetProperty("execution").GetProperty("id").GetString();
        (await account.Client.ExecutionsAsync()).Select(e => e.GetProperty("id").GetString()).ShouldBe([created]);
        (await account.Client.BalanceAsync()).Held.ShouldBe(10_000, "only the accepted item's one-cent hold");
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task A_webhook_host_name_too_long_to_resolve_is_refused_rather_than_failing_the_request()
    {
        // 5 labels of 60 characters: a valid URL well under 2048 characters, but a host name over
        // DNS's 255, which the resolver rejects with an ArgumentOutOfRangeException rather than a SocketException.
        var host = string.Join(".", Enumerable.Range(0, 5).Select(i => new string((char)('a' + i), 60))) + ".example";
        var url = $"https://{host}/hook";
        using var account = await Gateway.CreateAccountAsync("10.00");

        var submitted = await account.Client.SubmitTextAsync(extra: $$""","webhook_url":"{{url}}" """);
        var endpoint = await account.Client.PostJsonAsync("/v1/webhook-endpoints", $$"""{"url":"{{url}}"}""");

        submitted.Status.ShouldBe(422, submitted.Body);
        submitted.ProblemCode.ShouldBe("WEBHOOK_URL_NOT_ALLOWED");
        submitted.ProblemField().ShouldBe("webhook_url");
        endpoint.Status.ShouldBe(422, endpoint.Body);
        endpoint.ProblemCode.ShouldBe("WEBHOOK_URL_NOT_ALLOWED");
        endpoint.ProblemField().ShouldBe("url");
        (await account.Client.ExecutionsAsync()).ShouldBeEmpty();
        (await account.Client.BalanceAsync()).Held.ShouldBe(0);
        (await account.Client.GetApiAsync("/v1/webhook-endpoints")).Json.GetProperty("data").GetArrayLength().ShouldBe(0);
    }

    [Fact]
    public async Task A_batch_item_whose_webhook_host_name_is_too_long_to_resolve_is_refused_on_its_own()
    {
        var host = string.Join(".", Enumerable.Range(0, 5).Select(i => new string((char)('a' + i), 60))) + ".example";
        using var account = await Gateway.CreateAccountAsync("10.00");

        var response = await account.Client.PostJsonAsync(
            "/v1/executions/batch", $$"""{"executions":[{{Text("long-0", null)}},{{Text("long-1", $"https://{host}/hook")}}]}""");

        response.Status.ShouldBe(200, response.Body);
        var items = response.Json.GetProperty("data").EnumerateArray().ToList();
        items.Select(i => i.GetProperty("status").GetInt32()).ShouldBe([202, 422]);
        items[1].GetProperty("error").GetProperty("code").GetString().ShouldBe("WEBHOOK_URL_NOT_ALLOWED");
        items[1].GetProperty("error").GetProperty("field").GetString().ShouldBe("executions[1].webhook_url");
        (await account.Client.ExecutionsAsync()).Count.ShouldBe(1);
    }

    private static string Text(string key, string? webhookUrl) =>
        $$$"""{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}],"simulate":{"latency_ms":600000}},"idempotency_key":"{{{key}}}"{{{(webhookUrl is null ? "" : $",\"webhook_url\":\"{webhookUrl}\"")}}}}""";

    /// <summary>One gateway for the class, private networks refused (http allowed, so that the address is what is judged).</summary>
    public sealed class NoPrivateNetworksGateway : IAsyncLifetime
    {
        public GatewayFactory Gateway { get; } = new(new Dictionary<string, string?>
        {
            ["ModelRoute:Webhooks:AllowPrivateNetworks"] = "false",
            ["ModelRoute:Webhooks:AllowHttp"] = "true",
        });

        public Task InitializeAsync() => Task.CompletedTask;

        public async Task DisposeAsync() => await Gateway.DisposeAsync();
    }
}

/// <summary>https only unless the operator allows http: an http URL is refused even to a public address.</summary>
public sealed class HttpsOnlySsrfTests : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new(new Dictionary<string, string?>
    {
        ["ModelRoute:Webhooks:AllowPrivateNetworks"] = "false",
        ["ModelRoute:Webhooks:AllowHttp"] = "false",
    });

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task An_http_webhook_url_to_a_public_address_is_refused_at_submission_and_https_is_accepted()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");

        var refused = await account.Client.SubmitTextAsync(extra: ""","webhook_url":"http://93.184.216.34/" """);

        refused.Status.ShouldBe(422, refused.Body);
        refused.ProblemCode.ShouldBe("WEBHOOK_URL_NOT_ALLOWED");
        refused.ProblemField().ShouldBe("webhook_url");
        (await account.Client.ExecutionsAsync()).ShouldBeEmpty();
        (await account.Client.BalanceAsync()).Held.ShouldBe(0);

        var accepted = await account.Client.SubmitTextAsync(
            simulate: """{"latency_ms":600000}""",
            extra: ""","webhook_url":"https://93.184.216.34/","webhook_events":["execution.completed"]""");
        accepted.Status.ShouldBe(202, accepted.Body);
    }

    [Fact]
    public async Task An_http_webhook_endpoint_to_a_public_address_is_refused_and_https_is_accepted()
    {
        using var account = await _gateway.CreateAccountAsync();

        var refused = await account.Client.PostJsonAsync("/v1/webhook-endpoints", """{"url":"http://93.184.216.34/"}""");

        refused.Status.ShouldBe(422, refused.Body);
        refused.ProblemCode.ShouldBe("WEBHOOK_URL_NOT_ALLOWED");
        refused.ProblemField().ShouldBe("url");
        (await account.Client.GetApiAsync("/v1/webhook-endpoints")).Json.GetProperty("data").GetArrayLength().ShouldBe(0);

        var accepted = await account.Client.PostJsonAsync("/v1/webhook-endpoints", """{"url":"https://93.184.216.34/"}""");
        accepted.Status.ShouldBe(201, accepted.Body);
    }
}

/// <summary>
/// The check again at connect time, against the address actually used (a DNS answer that changed
/// after submission — DNS rebinding — is caught there), and no redirects followed.
/// </summary>
public sealed class ConnectTimeSsrfTests : IAsyncLifetime
{
    private static readonly Dictionary<string, string?> FastRetries = new()
    {
        ["ModelRoute:Webhooks:RetrySchedule:0"] = "00:00:00",
        ["ModelRoute:Webhooks:RetrySchedule:1"] = "00:00:00.200",
        ["ModelRoute:Webhooks:Timeout"] = "00:00:02",
    };

    private WebhookReceiver _receiver = null!;

    public async Task InitializeAsync() => _receiver = await WebhookReceiver.StartAsync();

    public async Task DisposeAsync() => await _receiver.DisposeAsync();

    [Fact]
    public async Task A_host_that_rebinds_to_loopback_after_the_submission_check_is_refused_when_connecting()
    {
        var resolver = FakeHostResolver.Rebinding("93.184.216.34", "127.0.0.1");
        await using var gateway = new GatewayFactory(Settings(allowPrivateNetworks: false), services => services.AddSingleton<ModelRoute.Server.Webhooks.IHostResolver>(resolver));
        using var account = await gateway.CreateAccountAsync();

        var submitted = await account.Client.SubmitTextAsync(extra: $$""","webhook_url":"http://rebind.test:{{Port}}/hook" """);

        // Accepted: the submission check saw the first, public answer. Not a count of exactly one lookup here: the
        // execution is handed to the dispatcher at the commit and its webhook may already be connecting (it failed so).
        submitted.Status.ShouldBe(202, submitted.Body);
        resolver.LookupsOf("rebind.test").ShouldBeGreaterThanOrEqualTo(1, "the submission check looked the host up");
        var id = submitted.Json.GetProperty("id").GetString()!;
        (await account.Client.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        var delivery = await FinishedDeliveryAsync(account.Client, id);

        delivery.GetProperty("status").GetString().ShouldBe("failed", delivery.ToString());
        delivery.GetProperty("attempts").GetInt32().ShouldBe(2, delivery.ToString());
        var attempts = delivery.GetProperty("attempt_log").EnumerateArray().ToList();
        attempts.Count.ShouldBe(2);
        foreach (var attempt in attempts)
        {
            attempt.GetProperty("status_code").ValueKind.ShouldBe(JsonValueKind.Null, attempt.ToString());
            attempt.GetProperty("error").GetString().ShouldNotBeNull().ShouldContain("Refused", Case.Insensitive, attempt.ToString());
        }

        delivery.GetProperty("last_error").GetString().ShouldNotBeNull().ShouldContain("Refused", Case.Insensitive);
        resolver.LookupsOf("rebind.test").ShouldBeGreaterThanOrEqualTo(3, "one lookup at submission, then one per connection attempt");
        _receiver.Received.ShouldBeEmpty("nothing may reach the loopback receiver");
    }

    [Fact]
    public async Task Control_the_same_rebinding_host_is_delivered_when_private_networks_are_allowed()
    {
        // Proves the test above can fail: the fake DNS does steer the webhook connection to the receiver.
        var resolver = FakeHostResolver.Always("127.0.0.1");
        await using var gateway = new GatewayFactory(Settings(allowPrivateNetworks: true), services => services.AddSingleton<ModelRoute.Server.Webhooks.IHostResolver>(resolver));
        using var account = await gateway.CreateAccountAsync();

        var submitted = await account.Client.SubmitTextAsync(extra: $$""","webhook_url":"http://rebind.test:{{Port}}/hook" """);

        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;
        (await account.Client.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        var delivery = await FinishedDeliveryAsync(account.Client, id);

        delivery.GetProperty("status").GetString().ShouldBe("succeeded", delivery.ToString());
        delivery.GetProperty("last_status_code").GetInt32().ShouldBe(200);
        var received = _receiver.Received.ShouldHaveSingleItem();
        received.Path.ShouldBe("/hook");
        received.Headers["host"].ShouldBe($"rebind.test:{Port}");
        received.Json.GetProperty("type").GetString().ShouldBe("execution.completed");
        received.Json.GetProperty("data").GetProperty("id").GetString().ShouldBe(id);
        resolver.LookupsOf("rebind.test").ShouldBeGreaterThanOrEqualTo(1);
    }

    [Fact]
    public async Task Redirects_are_not_followed_and_the_attempt_fails_with_the_redirect_status()
    {
        _receiver.Answer = (_, request) => request.Path == "/hook"
            ? new ReceiverAnswer(302, Headers: new Dictionary<string, string> { ["Location"] = _receiver.Url("/landed") })
            : ReceiverAnswer.Ok;
        await using var gateway = new GatewayFactory(Settings(allowPrivateNetworks: true));
        using var account = await gateway.CreateAccountAsync();

        var submitted = await account.Client.SubmitTextAsync(extra: $$""","webhook_url":"{{_receiver.Url("/hook")}}" """);

        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;
        (await account.Client.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        var delivery = await FinishedDeliveryAsync(account.Client, id);

        delivery.GetProperty("status").GetString().ShouldBe("failed", delivery.ToString());
        delivery.GetProperty("last_status_code").GetInt32().ShouldBe(302);
        var attempts = delivery.GetProperty("attempt_log").EnumerateArray().ToList();
        attempts.Count.ShouldBe(2);
        attempts.ShouldAllBe(a => a.GetProperty("status_code").GetInt32() == 302);
        attempts.ShouldAllBe(a => !string.IsNullOrEmpty(a.GetProperty("error").GetString()));
        _receiver.Received.Select(r => r.Path).ShouldBe(["/hook", "/hook"]);
        _receiver.Received.ShouldNotContain(r => r.Path == "/landed");
    }

    private int Port => new Uri(_receiver.BaseUrl).Port;

    private static Dictionary<string, string?> Settings(bool allowPrivateNetworks) => new(FastRetries)
    {
        ["ModelRoute:Webhooks:AllowPrivateNetworks"] = allowPrivateNetworks ? "true" : "false",
        ["ModelRoute:Webhooks:AllowHttp"] = "true",
    };

    /// <summary>The execution's single delivery, once it has succeeded or failed for good.</summary>
    private static async Task<JsonElement> FinishedDeliveryAsync(HttpClient client, string executionId)
    {
        JsonElement delivery = default;
        await Eventually.HoldsAsync(
            async () =>
            {
                var page = await client.GetApiAsync($"/v1/executions/{executionId}/webhook-deliveries");
                page.Status.ShouldBe(200, page.Body);
                var deliveries = page.Json.GetProperty("data").EnumerateArray().ToList();
                if (deliveries.Count == 0)
                {
                    return false;
                }

                deliveries.Count.ShouldBe(1, page.Body);
                delivery = deliveries[0];
                return delivery.GetProperty("status").GetString() != "pending";
            },
            $"the webhook delivery of {executionId} finished",
            seconds: 30);
        return delivery;
    }
}

public sealed class SsrfReplayTests
{
    [Fact]
    public async Task A_replay_is_answered_even_when_its_webhook_host_would_now_be_refused()
    {
        // The host resolves to a public address at the first submission and to loopback ever after.
        var resolver = FakeHostResolver.Rebinding("93.184.216.34", "127.0.0.1");
        await using var gateway = new GatewayFactory(
            new Dictionary<string, string?> { ["ModelRoute:Webhooks:AllowPrivateNetworks"] = "false" },
            services => services.AddSingleton<ModelRoute.Server.Webhooks.IHostResolver>(resolver));
        using var account = await gateway.CreateAccountAsync();

        var first = await account.Client.SubmitTextAsync(key: "same", extra: ",\"webhook_url\":\"http://rebind.test/hook\"");
        var replay = await account.Client.SubmitTextAsync(key: "same", extra: ",\"webhook_url\":\"http://rebind.test/hook\"");
        var fresh = await account.Client.SubmitTextAsync(key: "other", extra: ",\"webhook_url\":\"http://rebind.test/hook\"");

        first.Status.ShouldBe(202, first.Body);
        replay.Status.ShouldBe(200, replay.Body);
        replay.Json.GetProperty("id").GetString().ShouldBe(first.Json.GetProperty("id").GetString());
        fresh.Status.ShouldBe(422);
        fresh.ProblemCode.ShouldBe("WEBHOOK_URL_NOT_ALLOWED");
    }
}
