using System.Text.Json.Nodes;
using ModelRoute.Server.Providers.Fal;

namespace ModelRoute.Tests.Providers.Fal;

/// <summary>
/// fal's webhooks are taken only with the callback URL's token and a valid ED25519 signature by a key of the JWKS the
/// fake publishes: a tampered body, another key, a stale timestamp or missing headers are refused with 401 and change
/// nothing; a key published after the set was fetched is found by fetching the set again.
/// </summary>
public sealed class FalSignatureTests : IAsyncLifetime
{
    private FakeFal _fake = null!;
    private GatewayFactory _gateway = null!;

    public async Task InitializeAsync()
    {
        _fake = await FakeFal.StartAsync();
        // The fake never calls back by itself here: each test sends the webhook it means to.
        _fake.Script = _ => new FalScript(TimeSpan.FromMinutes(5), DropWebhook: true);
        _gateway = new GatewayFactory(FalWorld.Settings(_fake.BaseUrl, pollInterval: "00:10:00"));
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _fake.DisposeAsync();
    }

    [Fact]
    public async Task Forged_stale_or_unsigned_webhooks_are_refused_and_change_nothing_and_a_signed_one_completes()
    {
        using var account = await _gateway.CreateAccountAsync();
        var (id, requestId, webhook) = await SubmitAsync(account);
        var body = Result(requestId);
        using var wrongKey = FakeFal.NewKey();
        var good = _fake.SignedHeaders(requestId, body);

        var refused = new (string Why, string Body, Dictionary<string, string> Headers, string Url)[]
        {
            ("no signature headers", body, [], webhook),
            ("a tampered body", body.Replace("img-0.png", "evil.png", StringComparison.Ordinal), good, webhook),
            ("another key", body, _fake.SignedHeaders(requestId, body, key: wrongKey), webhook),
            ("a timestamp six minutes old", body, _fake.SignedHeaders(requestId, body, at: DateTimeOffset.UtcNow.AddMinutes(-6)), webhook),
            ("a timestamp six minutes ahead", body, _fake.SignedHeaders(requestId, body, at: DateTimeOffset.UtcNow.AddMinutes(6)), webhook),
            ("another request id than signed", body, new Dictionary<string, string>(good) { ["X-Fal-Webhook-Request-Id"] = "other" }, webhook),
            ("a signature that is not hex", body, new Dictionary<string, string>(good) { ["X-Fal-Webhook-Signature"] = new string('z', 128) }, webhook),
            ("a good signature but no URL token", body, good, webhook[..webhook.IndexOf("?token=", StringComparison.Ordinal)]),
        };
        foreach (var (why, sent, headers, url) in refused)
        {
            var answer = await PostAsync(url, sent, headers);
            answer.Status.ShouldBe(401, $"{why}: {answer.Body}");
            answer.ProblemCode.ShouldBe("UNAUTHENTICATED", why);
            (await account.Client.GetApiAsync($"/v1/executions/{id}")).Json.GetProperty("status").GetString().ShouldBe("AWAITING_WEBHOOK", why);
        }

        var accepted = await PostAsync(webhook, body, _fake.SignedHeaders(requestId, body));
        accepted.Status.ShouldBe(200, accepted.Body);
        var done = await account.Client.WaitForTerminalAsync(id);
        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        _fake.JwksFetches.ShouldBeGreaterThanOrEqualTo(1);
        _gateway.Logs.All.ShouldNotContain(FakeFal.ApiKey);
    }

    [Fact]
    public async Task A_rotated_key_is_found_by_fetching_the_key_set_again_once()
    {
        using var account = await _gateway.CreateAccountAsync();
        var (first, firstRequest, firstHook) = await SubmitAsync(account);
        var firstBody = Result(firstRequest);
        (await PostAsync(firstHook, firstBody, _fake.SignedHeaders(firstRequest, firstBody))).Status.ShouldBe(200);
        (await account.Client.WaitForTerminalAsync(first)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        _fake.JwksFetches.ShouldBe(1);

        _fake.RotateKey(keepOld: false);
        await Task.Delay(FalWebhookVerifier.MinRefetch + TimeSpan.FromMilliseconds(200));
        var (second, secondRequest, secondHook) = await SubmitAsync(account);
        var secondBody = Result(secondRequest);
        var answer = await PostAsync(secondHook, secondBody, _fake.SignedHeaders(secondRequest, secondBody));

        answer.Status.ShouldBe(200, answer.Body);
        (await account.Client.WaitForTerminalAsync(second)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        _fake.JwksFetches.ShouldBe(2, "one fetch for the new key");

        // A flood of signatures by no published key fetches the set at most once per MinRefetch, not once each.
        var (third, thirdRequest, thirdHook) = await SubmitAsync(account);
        var thirdBody = Result(thirdRequest);
        using var unknown = FakeFal.NewKey();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < 50; i++)
        {
            (await PostAsync(thirdHook, thirdBody, _fake.SignedHeaders(thirdRequest, thirdBody, key: unknown))).Status.ShouldBe(401);
        }

        var allowed = 2 + 1 + (int)(clock.Elapsed / FalWebhookVerifier.MinRefetch);
        _fake.JwksFetches.ShouldBeLessThanOrEqualTo(Math.Min(allowed, 20), $"50 refusals in {clock.Elapsed}");
        (await account.Client.GetApiAsync($"/v1/executions/{third}")).Json.GetProperty("status").GetString().ShouldBe("AWAITING_WEBHOOK");
    }

    /// <summary>Submits an image execution and waits until fal has queued it: the execution, fal's request id and the webhook URL.</summary>
    private async Task<(string Id, string RequestId, string Webhook)> SubmitAsync(TestAccount account)
    {
        var marker = "signed-" + Guid.NewGuid().ToString("N");
        var submitted = await account.Client.SubmitAsync("fal/flux", $$"""{"prompt":"{{marker}}","n":1}""");
        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;
        await account.Client.WaitForStatusAsync(id, "AWAITING_WEBHOOK");
        var submit = _fake.Submitted.Single(s => s.Body.Contains(marker, StringComparison.Ordinal));
        return (id, submit.Id, System.Web.HttpUtility.ParseQueryString(submit.Query)["fal_webhook"]!);
    }

    private string Result(string requestId) => new JsonObject
    {
        ["request_id"] = requestId,
        ["gateway_request_id"] = requestId,
        ["status"] = "OK",
        ["payload"] = new JsonObject
        {
            ["images"] = new JsonArray(new JsonObject { ["url"] = $"{_fake.BaseUrl}/files/{requestId}/img-0.png", ["content_type"] = "image/png" }),
        },
    }.ToJsonString();

    private async Task<ApiResponse> PostAsync(string url, string body, Dictionary<string, string> headers)
    {
        using var client = _gateway.Anonymous();
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        foreach (var (name, value) in headers)
        {
            request.Headers.Add(name, value);
        }

        var response = await client.SendAsync(request);
        return new ApiResponse((int)response.StatusCode, response, await response.Content.ReadAsStringAsync());
    }
}
